// An operator whose input type is `String` cannot be applied to a stream of `u64`.
use dataflow_core::{BoxError, Collector, Operator, Record, StreamEnvironment};

#[derive(Clone)]
struct Parse;

impl Operator for Parse {
    type In = String;
    type Out = u64;
    fn process(&mut self, r: Record<String>, out: &mut Collector<u64>) -> Result<(), BoxError> {
        out.collect(r.map(|s| s.len() as u64));
        Ok(())
    }
}

fn main() {
    let env = StreamEnvironment::new();
    let numbers = env.from_iter(vec![1u64, 2, 3]);
    let _parsed = numbers.transform("parse", Parse);
}
