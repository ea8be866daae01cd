//! The statistics the benches report: the median of repeated runs, with their range. Shared
//! by the bench binaries through `#[path]`.

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// Runs `f` `runs` times.
pub fn median(runs: usize, mut f: impl FnMut() -> Result<f64>) -> Result<Stats> {
    let mut v = (0..runs).map(|_| f()).collect::<Result<Vec<f64>>>()?;
    v.sort_by(f64::total_cmp);
    Ok(Stats {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    })
}
