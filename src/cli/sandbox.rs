//! `tdscale sandbox run`: a snippet or a query under the sandbox's limits, and how it ended.

use super::{args, print_json};
use crate::error::{Error, Result};

pub(super) async fn run(a: args::SandboxRunArgs) -> Result<()> {
    use crate::sandbox::{SandboxError, python, sql};
    let code = a.code()?;
    let sandbox_err = |e: SandboxError| match e {
        SandboxError::NoIsolation(_) => Error::Usage(e.to_string()),
        other => Error::Other(other.to_string()),
    };
    let r = match a.lang {
        args::Lang::Python => {
            let opts = python::PythonOptions {
                limits: a.limits(),
                allow_no_isolation: a.allow_no_isolation,
                ..Default::default()
            };
            tokio::task::spawn_blocking(move || python::run(&code, &opts))
                .await
                .map_err(|e| Error::Other(e.to_string()))?
                .map_err(sandbox_err)?
        }
        args::Lang::Sql => {
            let worker =
                std::env::current_exe().map_err(|e| Error::io("the tdscale executable", e))?;
            let limits = a.limits();
            tokio::task::spawn_blocking(move || {
                sql::run_isolated(&code, &a.tables, &limits, &worker)
            })
            .await
            .map_err(|e| Error::Other(e.to_string()))?
            .map_err(sandbox_err)?
        }
    };
    if a.json {
        print_json(&r)?;
    } else {
        print!("{}", r.stdout);
        eprint!("{}", r.stderr);
        eprintln!("{}", r.status_line());
    }
    if r.success() {
        Ok(())
    } else {
        let what = match a.lang {
            args::Lang::Python => "snippet",
            args::Lang::Sql => "query",
        };
        Err(Error::Other(format!(
            "the sandboxed {what} did not succeed: {:?}",
            r.outcome
        )))
    }
}
