//! Replayable sources: a new instance sought to a position goes on right
//! after the last record handed out, whatever the batch sizes; positions a
//! source cannot reach are errors, not panics.

use dataflow_core::connectors::{ElementSource, IterSource, Source, SourceContext, SourceStatus, StreamSource};
use dataflow_core::{Record, StreamElement};
use proptest::prelude::*;

/// Polls `batches` batches of `size`; returns the values and the position.
async fn read<S: Source<u32>>(s: &mut S, size: usize, batches: usize) -> (Vec<u32>, Option<Vec<u8>>) {
    let mut out = Vec::new();
    for _ in 0..batches {
        let mut ctx = SourceContext::new(size);
        let status = s.poll_batch(&mut ctx).await.unwrap();
        out.extend_from_slice(ctx.values());
        if status == SourceStatus::Finished {
            break;
        }
    }
    (out, s.position())
}

proptest! {
    #[test]
    fn seeking_a_new_instance_replays_the_rest(n in 0..300u32, size in 1..40usize, batches in 0..12usize) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let (head, at) = read(&mut IterSource::new(0..n), size, batches).await;
            let mut replay = IterSource::new(0..n);
            replay.seek(&at.unwrap()).unwrap();
            let (tail, _) = read(&mut replay, size, usize::MAX).await;
            assert_eq!([head, tail].concat(), (0..n).collect::<Vec<_>>());

            let elements = || (0..n).map(|v| StreamElement::Record(Record::with_timestamp(v, i64::from(v))));
            let (head, at) = read(&mut ElementSource::new(elements()), size, batches).await;
            let mut replay = ElementSource::new(elements());
            replay.seek(&at.unwrap()).unwrap();
            let (tail, _) = read(&mut replay, size, usize::MAX).await;
            assert_eq!([head, tail].concat(), (0..n).collect::<Vec<_>>());
        });
    }
}

#[test]
fn unreachable_or_malformed_positions_are_errors() {
    let mut s = IterSource::new(0..3u32);
    assert!(s.seek(&5u64.to_be_bytes()).unwrap_err().to_string().contains("only 3"));
    assert!(IterSource::new(0..3u32).seek(b"xyz").is_err());
    let mut stream = StreamSource::new(futures::stream::iter(vec![1u32]));
    assert_eq!(Source::<u32>::position(&stream), None, "a stream source is not replayable");
    assert!(Source::<u32>::seek(&mut stream, &0u64.to_be_bytes()).is_err());
}
