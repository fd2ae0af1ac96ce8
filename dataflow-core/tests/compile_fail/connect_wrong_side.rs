// The functions of a connected map must take each side's own type.
use dataflow_core::StreamEnvironment;

fn main() {
    let env = StreamEnvironment::new();
    let numbers = env.from_iter(vec![1u64]);
    let words = env.from_iter(vec![String::from("a")]);
    let _mixed = numbers.connect(&words).map(|w: String| w, |n: u64| n.to_string());
}
