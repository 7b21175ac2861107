use tracing_subscriber::EnvFilter;

// Parsing JSON allocates many small objects on both cores; mimalloc handles that far better
// than the system allocator (ingest spent almost half its time in malloc/free).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (`mi_option_e` in mimalloc.h; the crate names no constant).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// How long freed memory stays with the process before it goes back to the OS, in ms; -1:
/// never before the process exits.
const PURGE_DELAY_MS: std::ffi::c_long = 30_000;
const NEVER: std::ffi::c_long = -1;

fn main() {
    let cli = tdscale::cli::parse();
    // Streaming commands (ingest, gen) free and allocate batch-sized buffers all run long. With
    // mimalloc's default (memory unused for a second goes back to the OS) the kernel zeroed
    // fresh huge pages again and again: up to a tenth of ingest's CPU. Even with a delay of
    // 30 s, the kernel zeroing pages that mimalloc had given back and taken again was 3-5 % of
    // ingest's profile (1-2 % with nothing given back), so a command that streams and exits
    // keeps what it frees, for a peak the same at 10^6 and 80-110 MiB higher at 10^7
    // (benches/RESULTS.md; the wall-time gain first reported there was within the bias of the
    // rounds that measured it). A `serve` or an interactive `sql`
    // left idle still gives its memory back. MIMALLOC_PURGE_DELAY, when set, decides instead.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        let delay = if cli.command.streams() {
            NEVER
        } else {
            PURGE_DELAY_MS
        };
        // SAFETY: sets a documented option to a valid value; no other thread runs yet.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, delay) };
    }
    // Stop quietly when the reader of our output goes away (`tdscale sql … | head`), like other
    // Unix tools. SIGPIPE itself stays ignored (Rust's default): restoring its default action
    // would also kill the process when a network peer (an S3 endpoint, a model server, a cluster
    // node) closes a connection during a vectored write.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(tdscale::cli::main(cli)) {
        // The output's reader went away (possibly reported through a CSV / JSON writer).
        if e.to_string().contains("Broken pipe (os error 32)") {
            std::process::exit(141);
        }
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
