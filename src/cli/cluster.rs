//! The Ballista side of the command line: a context connected to a cluster, and the scheduler and
//! executor nodes (`--features cluster`).

use super::args::ClusterCommand;
#[cfg(not(feature = "cluster"))]
use crate::error::Error;
use crate::error::Result;

#[cfg(not(feature = "cluster"))]
const NO_CLUSTER: &str = "this tdscale was built without the cluster feature: build it with `cargo build --release --features cluster`";

/// A context connected to a Ballista cluster, with every tdscale function.
pub(super) async fn cluster_context(url: &str) -> Result<datafusion::prelude::SessionContext> {
    #[cfg(feature = "cluster")]
    {
        crate::distributed::cluster_context(url).await
    }
    #[cfg(not(feature = "cluster"))]
    {
        let _ = url;
        Err(Error::Usage(NO_CLUSTER.into()))
    }
}

/// Runs a scheduler or an executor node.
pub(super) async fn node(c: ClusterCommand) -> Result<()> {
    #[cfg(feature = "cluster")]
    {
        c.run().await
    }
    #[cfg(not(feature = "cluster"))]
    {
        let _ = c;
        Err(Error::Usage(NO_CLUSTER.into()))
    }
}
