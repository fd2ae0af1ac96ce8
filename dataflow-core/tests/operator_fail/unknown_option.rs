use dataflow_core::operator;

#[operator(name = "double", speed = 10)]
fn double(x: u64) -> u64 {
    x * 2
}

fn main() {}
