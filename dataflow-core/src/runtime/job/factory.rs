//! Type-erased factories that the graph stores and the job builder calls.
//!
//! The typed API knows every record type when it adds a node; it stores a
//! factory that remembers them. When a job is built, the builder connects
//! factories through `Box<dyn Any>` values (senders, gates, outputs) that
//! the typed side created and the typed side takes back; the typed API makes
//! a mismatch impossible, and a broken invariant is reported as
//! [`Error::Internal`] rather than a panic.

use crate::connectors::{Sink, Source};
use crate::element::Data;
use crate::error::Error;
use crate::graph::{Graph, KeyRoute, NodeFactories, NodeKind, Partitioning};
use crate::operator::{AsyncFnOperator, BoxError, Operator, OperatorInfo, TagKey, TwoInputOperator};
use crate::runtime::exchange::channel::{ChannelSender, InputGate, gate};
use crate::runtime::exchange::writer::{ChannelWriter, Route};
use crate::runtime::push::Push;
use crate::runtime::push::SideTarget;
use crate::runtime::push::TwoInputPush;
use crate::runtime::task::build_ctx::BuildCtx;
use crate::runtime::task::driver::{Emitter, OperatorDriver, Outputs, SideOutputs, TwoInputDriver};
use crate::runtime::task::input_task::{TaskCtx, run_one_input, run_two_input};
use crate::runtime::task::sink_driver::SinkDriver;
use crate::runtime::task::source_task::{SourceOutputs, run_source};
use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub(crate) type AnyBox = Box<dyn Any + Send>;

/// The factories the runtime's job graph holds: the erased traits below.
pub(crate) struct Factories;

impl NodeFactories for Factories {
    type Source = Box<dyn SourceFactory>;
    type OneInput = Box<dyn OneInputFactory>;
    type TwoInput = Box<dyn TwoInputFactory>;
    type Port = Arc<dyn Port>;
}

impl Factories {
    /// The node of a source factory.
    pub(crate) fn source(f: impl SourceFactory + 'static) -> NodeKind<Factories> {
        NodeKind::Source(Box::new(f) as Box<dyn SourceFactory>)
    }

    /// The node of a one-input factory.
    pub(crate) fn one_input(f: impl OneInputFactory + 'static) -> NodeKind<Factories> {
        NodeKind::OneInput(Box::new(f) as Box<dyn OneInputFactory>)
    }

    /// The node of a two-input factory.
    pub(crate) fn two_input(f: impl TwoInputFactory + 'static) -> NodeKind<Factories> {
        NodeKind::TwoInput(Box::new(f) as Box<dyn TwoInputFactory>)
    }

    /// The port of record type `T` (for a side output's edge).
    pub(crate) fn port<T: Data>() -> Arc<dyn Port> {
        Arc::new(TypedPort::<T>::NEW)
    }
}

/// A job graph as the typed API builds it and the runtime runs it.
pub(crate) type JobGraph = Graph<Factories>;
pub(crate) type TaskFuture = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

fn cast<X: 'static>(b: AnyBox, what: &str) -> Result<X, Error> {
    b.downcast::<X>().map(|b| *b).map_err(|_| Error::Internal(format!("type mismatch while building {what}")))
}

/// How a channel writer for one edge is configured.
pub(crate) struct WriterSpec {
    pub(crate) partitioning: Partitioning,
    pub(crate) key: Option<Arc<dyn Any + Send + Sync>>,
    pub(crate) max_parallelism: u32,
    pub(crate) batch_size: usize,
    pub(crate) timeout: Duration,
    pub(crate) task: Arc<str>,
}

/// The operations that depend only on a record type.
pub(crate) trait Port: Send + Sync {
    /// A gate with `channels` channels: the senders and the gate.
    fn gate(&self, channels: usize, capacity: usize) -> (Vec<AnyBox>, AnyBox);
    /// A `Box<dyn Push<T>>` writing into `senders`.
    fn writer(&self, spec: WriterSpec, senders: Vec<AnyBox>) -> Result<AnyBox, Error>;
    /// An `Outputs<T>` over `targets` (each a `Box<dyn Push<T>>`).
    fn outputs(&self, targets: Vec<AnyBox>) -> Result<AnyBox, Error>;
    /// The side output `key` (of type `T`) going to `targets`.
    fn side_target(&self, key: TagKey, targets: Vec<AnyBox>) -> Result<Box<dyn SideTarget>, Error>;
}

/// The [`Port`] of record type `T`.
pub(crate) struct TypedPort<T>(PhantomData<fn() -> T>);

impl<T> TypedPort<T> {
    pub(crate) const NEW: Self = TypedPort(PhantomData);
}

impl<T: Data> Port for TypedPort<T> {
    fn gate(&self, channels: usize, capacity: usize) -> (Vec<AnyBox>, AnyBox) {
        let (senders, g) = gate::<T>(channels, capacity);
        (senders.into_iter().map(|s| Box::new(s) as AnyBox).collect(), Box::new(g))
    }

    fn writer(&self, spec: WriterSpec, senders: Vec<AnyBox>) -> Result<AnyBox, Error> {
        let senders = senders
            .into_iter()
            .map(|s| cast::<ChannelSender<T>>(s, "a channel sender"))
            .collect::<Result<Vec<_>, _>>()?;
        let route = match spec.partitioning {
            Partitioning::Forward => Route::Forward,
            Partitioning::Rebalance => Route::Rebalance,
            Partitioning::Broadcast => Route::Broadcast,
            Partitioning::Hash => {
                let key = spec.key.ok_or_else(|| Error::Internal("hash edge without a key".into()))?;
                let key = key
                    .downcast_ref::<Arc<dyn KeyRoute<T>>>()
                    .ok_or_else(|| Error::Internal("hash edge key of the wrong type".into()))?
                    .clone();
                Route::Hash { key, max_parallelism: spec.max_parallelism }
            }
        };
        let w: Box<dyn Push<T>> =
            Box::new(ChannelWriter::new(senders, route, spec.batch_size, spec.timeout, spec.task));
        Ok(Box::new(w))
    }

    fn outputs(&self, targets: Vec<AnyBox>) -> Result<AnyBox, Error> {
        let targets =
            targets.into_iter().map(|t| cast::<Box<dyn Push<T>>>(t, "an output")).collect::<Result<Vec<_>, _>>()?;
        Ok(Box::new(Outputs::new(targets)))
    }

    fn side_target(&self, key: TagKey, targets: Vec<AnyBox>) -> Result<Box<dyn SideTarget>, Error> {
        let outputs = cast::<Outputs<T>>(self.outputs(targets)?, "side outputs")?;
        Ok(Box::new(SideOutputs { key, outputs }))
    }
}

/// Builds the task of a source node.
pub(crate) trait SourceFactory: Send + Sync {
    fn port(&self) -> &dyn Port;
    fn task(&self, ctx: BuildCtx, outputs: AnyBox) -> Result<TaskFuture, Error>;
}

/// Builds instances of a one-input node.
pub(crate) trait OneInputFactory: Send + Sync {
    fn in_port(&self) -> &dyn Port;
    fn out_port(&self) -> &dyn Port;
    /// A `Box<dyn Push<In>>` for the instance.
    fn instantiate(&self, ctx: BuildCtx, outputs: AnyBox) -> Result<AnyBox, Error>;
    /// The task loop for an instance heading a chain.
    fn task(&self, head: AnyBox, gate: AnyBox, task: TaskCtx) -> Result<TaskFuture, Error>;
}

/// Builds the task of a two-input node.
pub(crate) trait TwoInputFactory: Send + Sync {
    fn in_ports(&self) -> [&dyn Port; 2];
    fn out_port(&self) -> &dyn Port;
    fn task(&self, ctx: BuildCtx, outputs: AnyBox, gates: [AnyBox; 2], task: TaskCtx) -> Result<TaskFuture, Error>;
}

/// A function that makes one source instance per subtask.
pub(crate) type SourceMaker<T> = Box<dyn Fn(&OperatorInfo) -> Result<Box<dyn Source<T>>, BoxError> + Send + Sync>;

pub(crate) struct TypedSource<T> {
    pub(crate) make: SourceMaker<T>,
}

impl<T: Data> SourceFactory for TypedSource<T> {
    fn port(&self) -> &dyn Port {
        &TypedPort::<T>::NEW
    }

    fn task(&self, ctx: BuildCtx, outputs: AnyBox) -> Result<TaskFuture, Error> {
        let mut source = crate::runtime::task::driver::guard(&ctx.info, || (self.make)(&ctx.info))?;
        // A source resumes from its own subtask's position; rescaled, it
        // sees every old subtask's.
        if ctx.rescaled {
            let positions = ctx.all_parts()?;
            if !positions.is_empty() {
                crate::runtime::task::driver::guard(&ctx.info, || source.seek_rescaled(&positions))?;
            }
        } else if let Some(position) = ctx.own_parts()?.pop() {
            crate::runtime::task::driver::guard(&ctx.info, || source.seek(&position))?;
        }
        let head = SourceOutputs::new(cast::<Outputs<T>>(outputs, "source outputs")?, ctx.sides);
        Ok(Box::pin(run_source(source, head, ctx.info, ctx.counters, ctx.batch_size, ctx.acks)))
    }
}

/// Marks an [`TypedOperator`] of an [`Operator`].
pub(crate) struct SyncOp;
/// Marks an [`TypedOperator`] of an [`AsyncFnOperator`].
pub(crate) struct AsyncOp;

/// An operator kind that a one-input node can run; `M` tells the kinds
/// apart (a type could be both an `Operator` and an `AsyncFnOperator`).
pub(crate) trait Driven<M>: Send + 'static {
    type In: Data;
    type Out: Data;
    /// The instance's driver in a chain.
    fn driver(self, emitter: Emitter<Self::Out>) -> Result<Box<dyn Push<Self::In>>, Error>;
}

impl<O: Operator> Driven<SyncOp> for O {
    type In = O::In;
    type Out = O::Out;
    fn driver(self, emitter: Emitter<O::Out>) -> Result<Box<dyn Push<O::In>>, Error> {
        Ok(Box::new(OperatorDriver::open(self, emitter)?))
    }
}

impl<O: AsyncFnOperator> Driven<AsyncOp> for O {
    type In = O::In;
    type Out = O::Out;
    fn driver(self, emitter: Emitter<O::Out>) -> Result<Box<dyn Push<O::In>>, Error> {
        Ok(Box::new(crate::runtime::task::async_driver::AsyncDriver::new(self, emitter)))
    }
}

/// A one-input operator node: `make` builds the instance of each subtask.
pub(crate) struct TypedOperator<O, F, M> {
    make: F,
    _t: PhantomData<fn() -> (O, M)>,
}

impl<O, F, M> TypedOperator<O, F, M> {
    pub(crate) fn new(make: F) -> Self {
        Self { make, _t: PhantomData }
    }
}

impl<O, F, M> OneInputFactory for TypedOperator<O, F, M>
where
    O: Driven<M>,
    F: Fn(&OperatorInfo) -> O + Send + Sync,
    M: 'static,
{
    fn in_port(&self) -> &dyn Port {
        &TypedPort::<O::In>::NEW
    }

    fn out_port(&self) -> &dyn Port {
        &TypedPort::<O::Out>::NEW
    }

    fn instantiate(&self, ctx: BuildCtx, outputs: AnyBox) -> Result<AnyBox, Error> {
        let outputs = cast::<Outputs<O::Out>>(outputs, "operator outputs")?;
        let op = crate::runtime::task::driver::guard(&ctx.info, || Ok((self.make)(&ctx.info)))?;
        Ok(Box::new(op.driver(Emitter::new(outputs, ctx))?))
    }

    fn task(&self, head: AnyBox, gate: AnyBox, task: TaskCtx) -> Result<TaskFuture, Error> {
        one_input_task::<O::In>(head, gate, task)
    }
}

fn one_input_task<T: Data>(head: AnyBox, gate: AnyBox, task: TaskCtx) -> Result<TaskFuture, Error> {
    let head = cast::<Box<dyn Push<T>>>(head, "a chain head")?;
    let gate = cast::<InputGate<T>>(gate, "an input gate")?;
    Ok(Box::pin(run_one_input(gate, head, task)))
}

pub(crate) struct TypedSink<T, S, F> {
    pub(crate) make: F,
    pub(crate) _t: PhantomData<fn(T) -> S>,
}

impl<T, S, F> OneInputFactory for TypedSink<T, S, F>
where
    T: Data,
    S: Sink<T>,
    F: Fn(&OperatorInfo) -> S + Send + Sync,
{
    fn in_port(&self) -> &dyn Port {
        &TypedPort::<T>::NEW
    }

    fn out_port(&self) -> &dyn Port {
        &TypedPort::<()>::NEW
    }

    fn instantiate(&self, ctx: BuildCtx, _outputs: AnyBox) -> Result<AnyBox, Error> {
        let sink = crate::runtime::task::driver::guard(&ctx.info, || Ok((self.make)(&ctx.info)))?;
        let driver: Box<dyn Push<T>> = Box::new(SinkDriver::new(sink, ctx)?);
        Ok(Box::new(driver))
    }

    fn task(&self, head: AnyBox, gate: AnyBox, task: TaskCtx) -> Result<TaskFuture, Error> {
        one_input_task::<T>(head, gate, task)
    }
}

pub(crate) struct TypedTwoInput<O, F> {
    pub(crate) make: F,
    pub(crate) _t: PhantomData<fn() -> O>,
}

impl<O, F> TwoInputFactory for TypedTwoInput<O, F>
where
    O: TwoInputOperator,
    F: Fn(&OperatorInfo) -> O + Send + Sync,
{
    fn in_ports(&self) -> [&dyn Port; 2] {
        [&TypedPort::<O::In1>::NEW, &TypedPort::<O::In2>::NEW]
    }

    fn out_port(&self) -> &dyn Port {
        &TypedPort::<O::Out>::NEW
    }

    fn task(&self, ctx: BuildCtx, outputs: AnyBox, gates: [AnyBox; 2], task: TaskCtx) -> Result<TaskFuture, Error> {
        let outputs = cast::<Outputs<O::Out>>(outputs, "operator outputs")?;
        let op = crate::runtime::task::driver::guard(&ctx.info, || Ok((self.make)(&ctx.info)))?;
        let head: Box<dyn TwoInputPush<O::In1, O::In2>> =
            Box::new(TwoInputDriver::open(op, Emitter::new(outputs, ctx))?);
        let [g1, g2] = gates;
        let g1 = cast::<InputGate<O::In1>>(g1, "an input gate")?;
        let g2 = cast::<InputGate<O::In2>>(g2, "an input gate")?;
        Ok(Box::pin(run_two_input(g1, g2, head, task)))
    }
}
