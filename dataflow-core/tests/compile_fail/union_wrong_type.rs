// Only streams of the same type can be united.
use dataflow_core::StreamEnvironment;

fn main() {
    let env = StreamEnvironment::new();
    let numbers = env.from_iter(vec![1u64]);
    let words = env.from_iter(vec![String::from("a")]);
    let _all = numbers.union(&words);
}
