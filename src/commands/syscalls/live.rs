//! `dtk syscalls --live`: a full-screen view, redrawn every second, of the top system calls
//! and the top processes, each with its count, rate, total and average latency and errors.
//!
//! syscalls.d runs with SNAPSHOT (and BY_PROCESS, TIMED, ERRORS): every second it prints the
//! running totals, keyed by (pid, comm, call), then `snapshot WALLTIME`. Rates are the change
//! since the previous snapshot. A key thread changes the sort (and redraws at once) or ends
//! the run (q), through the same stop flag as Ctrl-C.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{average_us, wall_date, RowKey, Tally, WallLine, CONTRACT, SNAPSHOT};
use crate::backend::{EventSink, Stop};
use crate::cli::SortBy;
use crate::commands::{exit_status, trace_until, Tracer};
use crate::config::{Config, Format, SyscallsConfig};
use crate::event::{ByteString, Event};
use crate::output::live::{Key, Screen};
use crate::script::Script;

pub fn run(config: &Config, c: &SyscallsConfig, tracer: Tracer, script: Script) -> Result<u8> {
    if config.output.format == Format::Json {
        bail!("--live draws on the terminal and has no JSON form (try -i 1 -o json)");
    }
    let stop = Stop::on_signals().context("installing the SIGINT/SIGTERM handlers")?;
    let screen = Screen::enter().context("--live needs a terminal on stdout")?;
    let board = Board::new(c.sort, config.output.color);
    let view = Arc::new(Mutex::new(View { screen, board }));
    lock(&view).draw()?;
    let done = Arc::new(AtomicBool::new(false));
    let keys = {
        let (view, stop, done) = (Arc::clone(&view), stop.clone(), Arc::clone(&done));
        std::thread::spawn(move || read_keys(&view, &stop, &done))
    };
    let mut presenter = LivePresenter {
        view: Arc::clone(&view),
        pending: Tally::measuring(true, true, true),
    };
    let scope = tracer.scope(None);
    let result = trace_until(
        tracer,
        script,
        scope,
        &c.target,
        c.duration,
        stop,
        &mut presenter,
    );
    done.store(true, Ordering::Relaxed);
    let keys = keys.join();
    // The screen goes (and the terminal comes back) before any error is printed.
    drop(presenter);
    drop(view);
    let end = result?;
    keys.unwrap_or(Ok(()))?;
    Ok(exit_status(config, &c.target, &end))
}

fn lock(view: &Mutex<View>) -> MutexGuard<'_, View> {
    view.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Until the run is done: q ends it, a sort key redraws.
fn read_keys(view: &Mutex<View>, stop: &Stop, done: &AtomicBool) -> io::Result<()> {
    while !done.load(Ordering::Relaxed) {
        let key = lock(view).screen.key(Duration::ZERO)?;
        match key {
            Some(Key::Quit) => {
                stop.set();
                return Ok(());
            }
            Some(Key::Char(c)) => {
                if let Some(sort) = Sort::from_key(c) {
                    let mut view = lock(view);
                    view.board.sort = sort;
                    view.draw()?;
                }
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    Ok(())
}

/// The column the tables are sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sort {
    Count,
    Rate,
    Time,
    Errors,
    Name,
}

impl Sort {
    fn from_key(c: char) -> Option<Sort> {
        Some(match c {
            'c' => Sort::Count,
            'r' => Sort::Rate,
            't' => Sort::Time,
            'e' => Sort::Errors,
            'n' => Sort::Name,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Sort::Count => "count",
            Sort::Rate => "rate",
            Sort::Time => "time",
            Sort::Errors => "errors",
            Sort::Name => "name",
        }
    }
}

impl From<SortBy> for Sort {
    fn from(s: SortBy) -> Sort {
        match s {
            SortBy::Count => Sort::Count,
            SortBy::Time => Sort::Time,
            SortBy::Errors => Sort::Errors,
            SortBy::Name => Sort::Name,
        }
    }
}

/// One line of a table: a call or a process, summed over the other.
#[derive(Clone, Debug, Default, PartialEq)]
struct Line {
    name: String,
    count: i64,
    rate: f64,
    total_ns: i64,
    errors: i64,
}

impl Line {
    fn add(&mut self, count: i64, rate: f64, total_ns: i64, errors: i64) {
        self.count += count;
        self.rate += rate;
        self.total_ns += total_ns;
        self.errors += errors;
    }
}

/// The screen and what it shows.
struct View {
    screen: Screen,
    board: Board,
}

impl View {
    fn draw(&self) -> io::Result<()> {
        let (rows, _) = self.screen.size();
        let (lines, headers) = self.board.frame(rows);
        self.screen.draw(&lines, &headers, self.board.color)
    }
}

/// The two tables and the title above them, from the snapshots so far.
struct Board {
    sort: Sort,
    color: bool,
    calls: Vec<Line>,
    processes: Vec<Line>,
    /// Each row's count at the previous snapshot, and when that was.
    previous: BTreeMap<RowKey, i64>,
    previous_at: Option<Instant>,
    wall_ns: Option<i64>,
    drops: u64,
}

impl Board {
    fn new(sort: SortBy, color: bool) -> Board {
        Board {
            sort: sort.into(),
            color,
            calls: Vec::new(),
            processes: Vec::new(),
            previous: BTreeMap::new(),
            previous_at: None,
            wall_ns: None,
            drops: 0,
        }
    }

    /// Takes the running totals of one snapshot.
    fn update(&mut self, tally: &mut Tally, wall_ns: Option<i64>) {
        let now = Instant::now();
        let seconds = self
            .previous_at
            .map_or(0.0, |t| now.duration_since(t).as_secs_f64());
        let mut calls: BTreeMap<String, Line> = BTreeMap::new();
        let mut processes: BTreeMap<(i64, ByteString), Line> = BTreeMap::new();
        let mut counts = BTreeMap::new();
        for (key, row) in std::mem::take(&mut tally.rows) {
            let before = self.previous.get(&key).copied().unwrap_or(0);
            let rate = if seconds > 0.0 {
                (row.count - before).max(0) as f64 / seconds
            } else {
                0.0
            };
            let (pid, comm, call) = &key;
            let add = |line: &mut Line| {
                line.add(
                    row.count,
                    rate,
                    row.total_ns.unwrap_or(0),
                    row.errors.unwrap_or(0),
                )
            };
            add(calls.entry(call.clone()).or_insert_with(|| Line {
                name: call.clone(),
                ..Line::default()
            }));
            add(processes
                .entry((*pid, comm.clone()))
                .or_insert_with(|| Line {
                    name: format!("{pid:<7} {comm}"),
                    ..Line::default()
                }));
            counts.insert(key, row.count);
        }
        self.previous = counts;
        self.previous_at = Some(now);
        self.wall_ns = wall_ns;
        self.calls = calls.into_values().collect();
        self.processes = processes.into_values().collect();
    }

    fn sorted(&self, lines: &[Line]) -> Vec<Line> {
        let mut lines = lines.to_vec();
        match self.sort {
            Sort::Count => lines.sort_by_key(|l| Reverse(l.count)),
            Sort::Rate => lines.sort_by(|a, b| b.rate.total_cmp(&a.rate)),
            Sort::Time => lines.sort_by_key(|l| Reverse(l.total_ns)),
            Sort::Errors => lines.sort_by_key(|l| Reverse(l.errors)),
            Sort::Name => lines.sort_by(|a, b| a.name.cmp(&b.name)),
        }
        lines
    }

    /// The frame for a screen of `rows` rows, and which of its lines are headers.
    fn frame(&self, rows: usize) -> (Vec<String>, Vec<usize>) {
        let total: i64 = self.calls.iter().map(|l| l.count).sum();
        // A fold from +0.0: the sum of no floats is −0.0, which prints as "-0".
        let rate = self.calls.iter().fold(0.0, |sum, l| sum + l.rate);
        let when = self.wall_ns.map(wall_date).unwrap_or_default();
        let mut lines = vec![
            format!(
                "dtk syscalls --live  {when}  {total} calls  {rate:.0}/s  sort: {}  drops: {}",
                self.sort.name(),
                self.drops
            ),
            "keys: c count  r rate  t time  e errors  n name  q quit".to_string(),
        ];
        // Title, keys, and a blank line and a header above each table.
        let room = rows.saturating_sub(lines.len() + 4) / 2;
        let mut headers = Vec::new();
        for (title, table) in [("SYSCALL", &self.calls), ("PID     COMM", &self.processes)] {
            lines.push(String::new());
            headers.push(lines.len());
            lines.push(row_text(
                title,
                ["COUNT", "RATE/s", "TOTAL(us)", "AVG(us)", "ERRORS"].map(String::from),
            ));
            for l in self.sorted(table).iter().take(room) {
                lines.push(row_text(
                    &l.name,
                    [
                        l.count.to_string(),
                        format!("{:.0}", l.rate),
                        (l.total_ns / 1000).to_string(),
                        format!("{:.1}", average_us(l.total_ns, l.count)),
                        l.errors.to_string(),
                    ],
                ));
            }
        }
        (lines, headers)
    }
}

fn row_text(name: &str, [count, rate, total, avg, errors]: [String; 5]) -> String {
    format!("{name:<28} {count:>10} {rate:>9} {total:>12} {avg:>9} {errors:>8}")
}

struct LivePresenter {
    view: Arc<Mutex<View>>,
    /// The snapshot being received (its aggregations come one by one).
    pending: Tally,
}

impl EventSink for LivePresenter {
    /// The view draws whole frames and flushes each one itself.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn event(&mut self, event: Event) -> io::Result<()> {
        match event {
            Event::Agg(snapshot) => self.pending.absorb(&snapshot)?,
            Event::Printf(p) if CONTRACT.prefix_of(&p.text)? == SNAPSHOT => {
                let l: WallLine = CONTRACT.decode(&p.args)?;
                let mut view = lock(&self.view);
                view.board.update(&mut self.pending, Some(l.walltimestamp));
                view.draw()?;
            }
            Event::Drop { count, .. } => lock(&self.view).board.drops += count,
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AggEntry, AggFunc, AggSnapshot, AggValue, Value};

    fn calls(rows: &[(i64, &str, &str, i64)]) -> AggSnapshot {
        AggSnapshot {
            name: "calls".into(),
            func: AggFunc::Count,
            key_sizes: Vec::new(),
            sort: crate::event::AggSort::default(),
            entries: rows
                .iter()
                .map(|&(pid, comm, call, n)| AggEntry {
                    keys: vec![
                        Value::Int(pid),
                        Value::Str(comm.into()),
                        Value::Str(call.into()),
                    ],
                    value: AggValue::Scalar(n),
                })
                .collect(),
        }
    }

    #[test]
    fn tables_sum_calls_and_processes_and_follow_the_sort() {
        let mut board = Board::new(SortBy::Count, false);
        let mut tally = Tally::measuring(true, true, true);
        tally
            .absorb(&calls(&[
                (1, "a", "read", 10),
                (2, "b", "read", 5),
                (2, "b", "write", 12),
            ]))
            .unwrap();
        board.update(&mut tally, None);
        let (lines, headers) = board.frame(40);
        let first_words = |i: usize| lines[i].split_whitespace().take(3).collect::<Vec<_>>();
        assert_eq!(headers, [3, 7]);
        assert_eq!(first_words(4), ["read", "15", "0"]);
        assert_eq!(first_words(5), ["write", "12", "0"]);
        assert_eq!(first_words(8), ["2", "b", "17"]);
        assert_eq!(first_words(9), ["1", "a", "10"]);
        board.sort = Sort::Name;
        let (lines, _) = board.frame(40);
        assert!(lines[9].starts_with("2       b "), "{lines:?}");
    }

    #[test]
    fn rates_are_the_change_since_the_previous_snapshot() {
        let mut board = Board::new(SortBy::Count, false);
        let mut tally = Tally::measuring(true, true, true);
        tally.absorb(&calls(&[(1, "a", "read", 10)])).unwrap();
        board.update(&mut tally, None);
        board.previous_at = Some(Instant::now() - Duration::from_secs(2));
        tally.absorb(&calls(&[(1, "a", "read", 30)])).unwrap();
        board.update(&mut tally, None);
        let rate = board.calls[0].rate;
        assert!(
            (9.0..=10.0).contains(&rate),
            "20 calls in about 2 s: {rate}"
        );
        assert_eq!(board.calls[0].count, 30);
    }

    #[test]
    fn a_small_screen_shows_what_fits() {
        let mut board = Board::new(SortBy::Count, false);
        let mut tally = Tally::measuring(true, true, true);
        let many: Vec<(i64, &str, &str, i64)> = (0..50).map(|i| (i, "p", "read", i)).collect();
        tally.absorb(&calls(&many)).unwrap();
        board.update(&mut tally, None);
        assert!(board.frame(20).0.len() <= 20);
    }
}
