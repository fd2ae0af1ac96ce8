// An operator with keyed state applied to a stream that is not keyed.
use dataflow_core::{operator, StreamEnvironment, ValueState};

#[operator]
fn running_count(word: String, count: &mut ValueState<u64>) -> (String, u64) {
    let n = count.get_or_insert_with(|| 0);
    *n += 1;
    (word, *n)
}

fn main() {
    let env = StreamEnvironment::new();
    let _counts = env.from_iter(vec![String::from("a")]).apply(running_count());
}
