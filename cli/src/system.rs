//! `system info` (the health of each daemon) and `version`.

use std::io::{self, Write};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use rdock_common::client::Daemon;
use rdock_proto::runtime::v1::VersionRequest;
use serde_json::json;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::args::{InfoArgs, VersionArgs};
use crate::conn::Target;
use crate::error::{self, Reported};

const DAEMONS: [Daemon; 3] = [Daemon::Imaged, Daemon::Runtimed, Daemon::Netd];
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// The outcome of one health check.
struct Health {
    daemon: Daemon,
    addr: String,
    /// `SERVING`, `NOT_SERVING`, `UNKNOWN`, `SERVICE_UNKNOWN`, or
    /// `UNREACHABLE`/`ERROR` with the error.
    status: String,
    error: Option<String>,
}

async fn check(target: &Target, daemon: Daemon) -> Health {
    let addr = target.addr(daemon);
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, async {
        let conn = target.connect(daemon).await?;
        let resp = HealthClient::new(conn)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?
            .into_inner();
        Ok::<_, anyhow::Error>(resp.status)
    })
    .await
    .unwrap_or_else(|_| {
        Err(anyhow!(
            "rdock-{} at {addr}: health check timed out",
            daemon.name()
        ))
    });
    match outcome {
        Ok(code) => Health {
            daemon,
            addr,
            status: ServingStatus::try_from(code)
                .map_or("UNKNOWN", |s| s.as_str_name())
                .to_string(),
            error: None,
        },
        Err(e) => {
            let unreachable = e.downcast_ref::<tonic::Status>().is_none_or(|s| {
                matches!(
                    s.code(),
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
                )
            });
            let mut msg = error::message(&e);
            if e.downcast_ref::<tonic::Status>().is_some() {
                msg = format!("rdock-{} at {addr}: {msg}", daemon.name());
            }
            Health {
                daemon,
                addr,
                status: if unreachable { "UNREACHABLE" } else { "ERROR" }.to_string(),
                error: Some(msg),
            }
        }
    }
}

pub async fn info(target: &Target, args: &InfoArgs) -> Result<()> {
    let json_out = match args.format.as_deref().map(str::trim) {
        None | Some("") => false,
        Some("json") => true,
        Some(f) => bail!("unsupported format {f:?}: use \"json\""),
    };
    let results = futures::future::join_all(DAEMONS.map(|d| check(target, d))).await;
    let mut out = io::stdout().lock();
    if json_out {
        let mut obj = serde_json::Map::new();
        for h in &results {
            let mut v = json!({ "Status": h.status, "Address": h.addr });
            if let Some(e) = &h.error {
                v["Error"] = json!(e);
            }
            obj.insert(h.daemon.name().to_string(), v);
        }
        writeln!(out, "{}", serde_json::Value::Object(obj))?;
    } else {
        for h in &results {
            writeln!(out, "{}: {} ({})", h.daemon.name(), h.status, h.addr)?;
        }
    }
    out.flush()?;
    for h in &results {
        if let Some(e) = &h.error {
            error::print_line(e);
        }
    }
    if results.iter().all(|h| h.status == "SERVING") {
        Ok(())
    } else {
        Err(Reported.into())
    }
}

pub async fn version(target: &Target, args: &VersionArgs) -> Result<()> {
    let json_out = match args.format.as_deref().map(str::trim) {
        None | Some("") => false,
        Some("json") => true,
        Some(f) => bail!("unsupported format {f:?}: use \"json\""),
    };
    let client_version = env!("CARGO_PKG_VERSION");
    if !json_out {
        let mut out = io::stdout().lock();
        writeln!(out, "Client:")?;
        writeln!(out, " Version:  {client_version}")?;
        out.flush()?;
    }
    let server = async {
        let mut client = target.runtime().await?;
        Ok::<_, anyhow::Error>(client.version(VersionRequest {}).await?.into_inner())
    }
    .await;
    let mut out = io::stdout().lock();
    match (server, json_out) {
        (Ok(v), false) => {
            writeln!(out, "Server:")?;
            writeln!(out, " Version:  {}", v.version)?;
            writeln!(out, " Runtime:  {}", v.runtime)?;
        }
        (Ok(v), true) => {
            let obj = json!({
                "Client": { "Version": client_version },
                "Server": { "Version": v.version, "Runtime": v.runtime },
            });
            writeln!(out, "{obj}")?;
        }
        (Err(e), true) => {
            let obj = json!({ "Client": { "Version": client_version }, "Server": null });
            writeln!(out, "{obj}")?;
            return Err(e);
        }
        (Err(e), false) => return Err(e),
    }
    out.flush()?;
    Ok(())
}
