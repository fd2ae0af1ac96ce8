use dataflow_core::operator;
use dataflow_core::operator::Context;

#[operator]
fn split(line: String, a: &mut Context<String>, b: &mut Context<String>) {
    a.emit(line.clone());
    b.emit(line);
}

fn main() {}
