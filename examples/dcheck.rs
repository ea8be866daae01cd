use dtk::backend::linux::d::*;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let src = std::fs::read_to_string(&path).unwrap();
    let macros = MacroArgs {
        target: Some(1234),
        args: std::env::args().skip(2).collect(),
    };
    match compile(&path, &src, &macros) {
        Ok(c) => {
            print!("{}", dump(&c.program, &src));
            for w in c.warnings {
                print!("{}", w.render(&src));
            }
        }
        Err(e) => print!("{e}"),
    }
}
