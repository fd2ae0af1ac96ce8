use dataflow_core::operator;

fn fire(_at: i64, _ctx: &mut operator::Context<u8>) {}

#[operator(on_timer = fire)]
async fn lookup(x: u8) -> u8 {
    x
}

fn main() {}
