use dataflow_core::operator;

#[operator]
fn method(self, x: u64) -> u64 {
    x
}

fn main() {}
