// An operator over `String` applied to a stream of `u64`.
use dataflow_core::{operator, StreamEnvironment};

#[operator]
fn shout(line: String) -> String {
    line.to_uppercase()
}

fn main() {
    let env = StreamEnvironment::new();
    let _s = env.from_iter(vec![1u64, 2]).apply(shout());
}
