//! `tdscale._native`, the native module of the tdscale Python package: a thin layer over the
//! library, with no behaviour of its own.
//!
//! - Functions and tables go to the `datafusion` package (55.x) as `datafusion-ffi` capsules:
//!   every tdscale function from `tdscale::metrics`, and a corpus's tables and selection table
//!   functions bound to its `CorpusSession` (`tdscale::query::bound`).
//! - Commands are `tdscale` command lines run by `tdscale::cli::embed` on this module's tokio
//!   runtime; Python waits for them in short slices with the GIL released, so it can draw their
//!   progress bars and stop them on Ctrl-C.

use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arrow::ffi_stream::{ArrowArrayStreamReader, FFI_ArrowArrayStream};
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use datafusion_ffi::table_provider::FFI_TableProvider;
use datafusion_ffi::udaf::FFI_AggregateUDF;
use datafusion_ffi::udf::FFI_ScalarUDF;
use datafusion_ffi::udtf::FFI_TableFunction;
use indicatif::ProgressBar;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use tdscale::progress::Units;
use tdscale::query::session::CorpusSession;

create_exception!(
    _native,
    NativeError,
    PyException,
    "A tdscale error: args are (exit code of the command line, message)."
);

fn py_err(e: tdscale::error::Error) -> PyErr {
    NativeError::new_err((e.exit_code(), e.to_string()))
}

/// The runtime every command, scan and table function of this module runs on.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("tdscale")
            .build()
            .expect("cannot start the tokio runtime")
    })
}

/// The logical codec of the session a capsule is made for (`datafusion` passes its context).
fn session_codec(session: &Bound<'_, PyAny>) -> PyResult<FFI_LogicalExtensionCodec> {
    let capsule = if session.hasattr("__datafusion_logical_extension_codec__")? {
        session.call_method0("__datafusion_logical_extension_codec__")?
    } else {
        session.clone()
    };
    let capsule = capsule.cast::<PyCapsule>()?;
    let codec = capsule.pointer_checked(Some(c"datafusion_logical_extension_codec"))?;
    // SAFETY: the capsule's name says it holds an FFI_LogicalExtensionCodec, which stays alive
    // while the capsule does; it is cloned (a reference count) before the capsule can go.
    Ok(unsafe { codec.cast::<FFI_LogicalExtensionCodec>().as_ref() }.clone())
}

/// A tdscale scalar function, for `datafusion.ScalarUDF.from_pycapsule`.
#[pyclass(frozen, module = "tdscale._native")]
struct ScalarFunction(Arc<ScalarUDF>);

#[pymethods]
impl ScalarFunction {
    #[getter]
    fn name(&self) -> String {
        self.0.name().to_string()
    }

    fn __datafusion_scalar_udf__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        PyCapsule::new_with_value(
            py,
            FFI_ScalarUDF::from(self.0.clone()),
            c"datafusion_scalar_udf",
        )
    }
}

/// A tdscale aggregate function, for `datafusion.AggregateUDF.from_pycapsule`.
#[pyclass(frozen, module = "tdscale._native")]
struct AggregateFunction(Arc<AggregateUDF>);

#[pymethods]
impl AggregateFunction {
    #[getter]
    fn name(&self) -> String {
        self.0.name().to_string()
    }

    fn __datafusion_aggregate_udf__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        PyCapsule::new_with_value(
            py,
            FFI_AggregateUDF::from(self.0.clone()),
            c"datafusion_aggregate_udf",
        )
    }
}

/// A tdscale table function (free, or bound to a corpus), for `datafusion.TableFunction`.
#[pyclass(frozen, module = "tdscale._native")]
struct TableFunction {
    name: &'static str,
    function: Arc<dyn TableFunctionImpl>,
}

#[pymethods]
impl TableFunction {
    #[getter]
    fn name(&self) -> &'static str {
        self.name
    }

    fn __datafusion_table_function__<'py>(
        &self,
        py: Python<'py>,
        session: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let f = FFI_TableFunction::new_with_ffi_codec(
            self.function.clone(),
            Some(runtime().handle().clone()),
            session_codec(&session)?,
        );
        PyCapsule::new_with_value(py, f, c"datafusion_table_function")
    }
}

/// A table of a corpus, bound to its session, for `datafusion.SessionContext.register_table`.
#[pyclass(frozen, module = "tdscale._native")]
struct Table {
    name: &'static str,
    provider: Arc<dyn TableProvider>,
}

#[pymethods]
impl Table {
    #[getter]
    fn name(&self) -> &'static str {
        self.name
    }

    fn __datafusion_table_provider__<'py>(
        &self,
        py: Python<'py>,
        session: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let p = FFI_TableProvider::new_with_ffi_codec(
            self.provider.clone(),
            true,
            Some(runtime().handle().clone()),
            session_codec(&session)?,
        );
        PyCapsule::new_with_value(py, p, c"datafusion_table_provider")
    }
}

/// Every tdscale scalar function.
#[pyfunction]
fn scalar_functions() -> Vec<ScalarFunction> {
    tdscale::metrics::scalar_functions()
        .into_iter()
        .map(|f| ScalarFunction(Arc::new(f)))
        .collect()
}

/// Every tdscale aggregate function.
#[pyfunction]
fn aggregate_functions() -> Vec<AggregateFunction> {
    tdscale::metrics::aggregate_functions()
        .into_iter()
        .map(|f| AggregateFunction(Arc::new(f)))
        .collect()
}

/// Every tdscale table function, reading the tables of the session that calls it.
#[pyfunction]
fn table_functions() -> Vec<TableFunction> {
    tdscale::metrics::table_functions()
        .into_iter()
        .map(|(name, function)| TableFunction { name, function })
        .collect()
}

/// The views every corpus session has, as (name, CREATE VIEW statement), in creation order.
#[pyfunction]
fn views() -> Vec<(&'static str, &'static str)> {
    tdscale::query::session::VIEWS.to_vec()
}

/// An open corpus: its session, whose tables and table functions other sessions borrow.
#[pyclass(frozen, module = "tdscale._native")]
struct Corpus(CorpusSession);

#[pymethods]
impl Corpus {
    /// The corpus root as given.
    #[getter]
    fn root(&self) -> String {
        self.0.corpus().display().to_string()
    }

    /// Every table of the corpus.
    fn tables(&self, py: Python<'_>) -> PyResult<Vec<Table>> {
        let session = self.0.clone();
        let tables = py
            .detach(|| runtime().block_on(session.bound_tables()))
            .map_err(py_err)?;
        Ok(tables
            .into_iter()
            .map(|(name, provider)| Table { name, provider })
            .collect())
    }

    /// The table functions, reading this corpus's tables and views.
    fn table_functions(&self) -> Vec<TableFunction> {
        // Bound on the module's runtime, where their tables plan their scans.
        let _runtime = runtime().enter();
        self.0
            .bound_table_functions()
            .into_iter()
            .map(|(name, function)| TableFunction { name, function })
            .collect()
    }
}

/// Opens the corpus at `root` (a folder or s3://bucket/prefix).
#[pyfunction]
fn open_corpus(py: Python<'_>, root: String) -> PyResult<Corpus> {
    py.detach(|| {
        runtime().block_on(async {
            let corpus = tdscale::store::Corpus::open(&root)?;
            CorpusSession::open(&corpus).await
        })
    })
    .map(Corpus)
    .map_err(py_err)
}

/// A progress bar a command started.
struct ObservedBar {
    bar: ProgressBar,
    label: String,
    bytes: bool,
}

/// Bars started since a waiting command last collected them.
fn started_bars() -> &'static Mutex<Vec<ObservedBar>> {
    static BARS: OnceLock<Mutex<Vec<ObservedBar>>> = OnceLock::new();
    BARS.get_or_init(|| Mutex::new(vec![]))
}

type Outcome = Result<String, tdscale::error::Error>;

/// A command running on the module's runtime.
#[pyclass(module = "tdscale._native")]
struct Task {
    outcome: Mutex<Receiver<Outcome>>,
    result: Mutex<Option<Outcome>>,
    /// Dropping the command's future stops it, as an interrupted command line stops.
    cancel: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    bars: Mutex<Vec<ObservedBar>>,
}

impl Task {
    /// Runs the future `work` makes on a thread of its own, driven by the module's runtime: a
    /// command's future is not `Send` (it holds the SQL parser's dialect and open uploads across
    /// awaits), so it cannot be spawned on the runtime's workers.
    fn spawn<F, W>(work: W) -> Task
    where
        W: FnOnce() -> F + Send + 'static,
        F: Future<Output = Result<serde_json::Value, tdscale::error::Error>>,
    {
        let (tx, rx) = channel();
        let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let outcome = runtime().block_on(async move {
                tokio::select! {
                    value = work() => Some(value),
                    _ = cancel_rx => None,
                }
            });
            if let Some(outcome) = outcome {
                let outcome = outcome.and_then(|v| {
                    serde_json::to_string(&v)
                        .map_err(|e| tdscale::error::Error::Other(e.to_string()))
                });
                let _ = tx.send(outcome);
            }
        });
        Task {
            outcome: Mutex::new(rx),
            result: Mutex::new(None),
            cancel: Mutex::new(Some(cancel_tx)),
            bars: Mutex::new(vec![]),
        }
    }
}

#[pymethods]
impl Task {
    /// Waits up to `seconds` with the GIL released; true once the command has ended.
    fn wait(&self, py: Python<'_>, seconds: f64) -> PyResult<bool> {
        if self.result.lock().expect("task lock").is_some() {
            return Ok(true);
        }
        let received = py.detach(|| {
            self.outcome
                .lock()
                .expect("task lock")
                .recv_timeout(Duration::from_secs_f64(seconds.max(0.0)))
        });
        match received {
            Ok(outcome) => {
                *self.result.lock().expect("task lock") = Some(outcome);
                Ok(true)
            }
            Err(RecvTimeoutError::Timeout) => Ok(false),
            Err(RecvTimeoutError::Disconnected) => {
                *self.result.lock().expect("task lock") = Some(Err(tdscale::error::Error::Other(
                    "the command stopped without an answer (it was cancelled or panicked)".into(),
                )));
                Ok(true)
            }
        }
    }

    /// The command's progress bars: (label, counts bytes, position, length or None, finished).
    fn bars(&self) -> Vec<(String, bool, u64, Option<u64>, bool)> {
        let mut bars = self.bars.lock().expect("bars lock");
        bars.append(&mut started_bars().lock().expect("bars lock"));
        bars.iter()
            .map(|b| {
                (
                    b.label.clone(),
                    b.bytes,
                    b.bar.position(),
                    b.bar.length(),
                    b.bar.is_finished(),
                )
            })
            .collect()
    }

    /// The command's value as JSON text, or its error.
    fn result(&self) -> PyResult<String> {
        match self.result.lock().expect("task lock").take() {
            Some(Ok(json)) => Ok(json),
            Some(Err(e)) => Err(py_err(e)),
            None => Err(PyException::new_err(
                "the command has not ended: wait() first",
            )),
        }
    }

    /// Stops the command (what it wrote so far stays, as when the command line is interrupted).
    fn cancel(&self) {
        if let Some(cancel) = self.cancel.lock().expect("task lock").take() {
            let _ = cancel.send(());
        }
    }
}

/// Starts the command line `args` (without the program name).
#[pyfunction]
fn start(args: Vec<String>, progress: bool) -> Task {
    Task::spawn(move || async move { tdscale::cli::embed::run(&args, progress).await })
}

/// Starts an ingest of the rows of `data` (any object with `__arrow_c_stream__`): `args` is an
/// ingest command line whose one input names the rows.
#[pyfunction]
fn start_ingest_rows(args: Vec<String>, data: Bound<'_, PyAny>, progress: bool) -> PyResult<Task> {
    let capsule = data.call_method0("__arrow_c_stream__")?;
    let capsule = capsule.cast::<PyCapsule>()?;
    let stream = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
    // SAFETY: the capsule's name says it holds an ArrowArrayStream; from_raw moves the stream
    // out and leaves a released one behind, which the capsule's destructor ignores.
    let reader =
        unsafe { ArrowArrayStreamReader::from_raw(stream.cast::<FFI_ArrowArrayStream>().as_ptr()) }
            .map_err(|e| {
                NativeError::new_err((2, format!("the data cannot be read as Arrow: {e}")))
            })?;
    Ok(Task::spawn(move || async move {
        tdscale::cli::embed::ingest_rows(&args, Box::new(reader), progress).await
    }))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    tdscale::progress::observe(Box::new(|bar, label, units| {
        started_bars().lock().expect("bars lock").push(ObservedBar {
            bar: bar.clone(),
            label: label.to_string(),
            bytes: units == Units::Bytes,
        });
    }));
    m.add("NativeError", m.py().get_type::<NativeError>())?;
    m.add("DATAFUSION_FFI_MAJOR", datafusion_ffi::version())?;
    m.add_class::<ScalarFunction>()?;
    m.add_class::<AggregateFunction>()?;
    m.add_class::<TableFunction>()?;
    m.add_class::<Table>()?;
    m.add_class::<Corpus>()?;
    m.add_class::<Task>()?;
    m.add_function(wrap_pyfunction!(scalar_functions, m)?)?;
    m.add_function(wrap_pyfunction!(aggregate_functions, m)?)?;
    m.add_function(wrap_pyfunction!(table_functions, m)?)?;
    m.add_function(wrap_pyfunction!(views, m)?)?;
    m.add_function(wrap_pyfunction!(open_corpus, m)?)?;
    m.add_function(wrap_pyfunction!(start, m)?)?;
    m.add_function(wrap_pyfunction!(start_ingest_rows, m)?)?;
    Ok(())
}
