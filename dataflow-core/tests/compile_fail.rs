//! Type mismatches between streams and operators, and misuse of
//! `#[operator]`, are compile errors at the offending token.

#[test]
fn type_mismatches_do_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
}

#[test]
fn operator_misuse_does_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/operator_fail/*.rs");
}
