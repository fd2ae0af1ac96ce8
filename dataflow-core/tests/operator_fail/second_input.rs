use dataflow_core::operator;

#[operator]
fn add(x: u64, y: u64) -> u64 {
    x + y
}

fn main() {}
