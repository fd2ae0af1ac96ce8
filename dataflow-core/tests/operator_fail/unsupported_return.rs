use dataflow_core::operator;

#[operator]
fn first_word(line: String) -> &'static str {
    let _ = line;
    "borrowed"
}

fn main() {}
