// A closure that takes a `String` cannot map a stream of `u64`.
use dataflow_core::StreamEnvironment;

fn main() {
    let env = StreamEnvironment::new();
    let numbers = env.from_iter(vec![1u64, 2, 3]);
    let _lengths = numbers.map(|s: String| s.len());
}
