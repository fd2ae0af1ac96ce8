use dataflow_core::operator;

struct ValueState<T>(T);

#[operator]
fn count(word: String, seen: ValueState<u64>) -> u64 {
    seen.0 + word.len() as u64
}

fn main() {}
