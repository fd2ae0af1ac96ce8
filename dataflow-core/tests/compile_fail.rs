//! Type mismatches between streams and operators are compile errors.

#[test]
fn type_mismatches_do_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
}
