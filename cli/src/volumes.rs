//! `volume create|ls|inspect|rm|prune`, against the runtime daemon, which
//! keeps named volumes. Output as Docker's; failures exit 1.

use std::collections::BTreeMap;
use std::io::{self, BufRead as _, Write as _};

use anyhow::{bail, Result};
use rdock_proto::runtime::v1::{
    CreateVolumeRequest, InspectVolumeRequest, ListVolumesRequest, PruneVolumesRequest,
    RemoveVolumeRequest, Volume,
};
use serde::Serialize;

use crate::args::{
    VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs,
};
use crate::conn::Target;
use crate::containers::for_each;
use crate::error::{self, Reported};
use crate::format::{check_template, human_size_4, is_table, json_reindent, render_rows};
use crate::ports::natural_cmp;
use crate::template::GoTemplate;

const DRIVER: &str = "local";
const SCOPE: &str = "local";
const NOT_APPLICABLE: &str = "N/A";

pub async fn create(target: &Target, args: &VolumeCreateArgs) -> Result<()> {
    if args.driver != DRIVER {
        bail!(
            "volume driver \"{}\" is not supported: rdock has only \"{DRIVER}\"",
            args.driver
        );
    }
    let mut labels = std::collections::HashMap::new();
    for l in &args.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            bail!("invalid label '{l}': empty name");
        }
        labels.insert(k.to_string(), v.to_string());
    }
    let mut rt = target.runtime().await?;
    let vol = rt
        .create_volume(CreateVolumeRequest {
            name: args.name.clone().unwrap_or_default(),
            labels,
        })
        .await?
        .into_inner();
    let mut out = io::stdout().lock();
    writeln!(out, "{}", vol.name)?;
    out.flush()?;
    Ok(())
}

/// The JSON object of `volume ls --format json` (keys sorted, as Docker's).
#[derive(Debug, Serialize)]
struct VolumeJson {
    #[serde(rename = "Availability")]
    availability: String,
    #[serde(rename = "Driver")]
    driver: String,
    #[serde(rename = "Group")]
    group: String,
    #[serde(rename = "Labels")]
    labels: String,
    #[serde(rename = "Links")]
    links: String,
    #[serde(rename = "Mountpoint")]
    mountpoint: String,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Scope")]
    scope: String,
    #[serde(rename = "Size")]
    size: String,
    #[serde(rename = "Status")]
    status: String,
}

fn driver(v: &Volume) -> String {
    if v.driver.is_empty() {
        DRIVER.into()
    } else {
        v.driver.clone()
    }
}

fn labels_cell(v: &Volume) -> String {
    let sorted: BTreeMap<&String, &String> = v.labels.iter().collect();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// What `volume ls` prints (sorted by name).
pub fn render_ls(args: &VolumeLsArgs, volumes: &[Volume]) -> Result<String> {
    let mut list: Vec<&Volume> = volumes.iter().collect();
    list.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    let format = args.format.as_deref();
    if args.quiet && is_table(format) {
        let mut out = String::new();
        for v in &list {
            out.push_str(&v.name);
            out.push('\n');
        }
        return Ok(out);
    }
    let rows: Vec<VolumeJson> = list
        .iter()
        .map(|v| VolumeJson {
            availability: NOT_APPLICABLE.into(),
            driver: driver(v),
            group: NOT_APPLICABLE.into(),
            labels: labels_cell(v),
            links: NOT_APPLICABLE.into(),
            mountpoint: v.mountpoint.clone(),
            name: v.name.clone(),
            scope: SCOPE.into(),
            size: NOT_APPLICABLE.into(),
            status: NOT_APPLICABLE.into(),
        })
        .collect();
    render_rows(format, &["DRIVER", "VOLUME NAME"], &rows, |r| {
        vec![r.driver.clone(), r.name.clone()]
    })
}

pub async fn ls(target: &Target, args: &VolumeLsArgs) -> Result<()> {
    check_template(args.format.as_deref())?;
    let mut rt = target.runtime().await?;
    let list = rt.list_volumes(ListVolumesRequest {}).await?.into_inner();
    let text = render_ls(args, &list.volumes)?;
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// `volume inspect`'s object, keys in Docker's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeInspect {
    created_at: String,
    driver: String,
    labels: BTreeMap<String, String>,
    mountpoint: String,
    name: String,
    options: BTreeMap<String, String>,
    scope: String,
}

pub fn inspect_object(v: &Volume) -> VolumeInspect {
    VolumeInspect {
        created_at: v.created_at.clone(),
        driver: driver(v),
        labels: v
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        mountpoint: v.mountpoint.clone(),
        name: v.name.clone(),
        options: BTreeMap::new(),
        scope: SCOPE.into(),
    }
}

/// One JSON array of the volumes found (or one template line each); a
/// name that is no volume is one error line, and exit 1.
pub async fn inspect(target: &Target, args: &VolumeInspectArgs) -> Result<()> {
    // `json` (or nothing) is Docker's indented array.
    let tmpl = args
        .format
        .as_deref()
        .filter(|f| !matches!(f.trim(), "" | "json"))
        .map(GoTemplate::parse)
        .transpose()?;
    let mut rt = target.runtime().await?;
    let mut found = Vec::new();
    let mut failed = false;
    for name in &args.names {
        match rt
            .inspect_volume(InspectVolumeRequest { name: name.clone() })
            .await
        {
            Ok(v) => found.push(inspect_object(&v.into_inner())),
            Err(status) => {
                failed = true;
                error::print_line(&error::status_message(&status));
            }
        }
    }
    let mut out = io::stdout().lock();
    match tmpl {
        Some(t) => {
            for v in &found {
                writeln!(out, "{}", t.render(&serde_json::to_value(v)?)?)?;
            }
        }
        None if found.is_empty() && failed => {}
        None => writeln!(out, "{}", json_reindent(&serde_json::to_string(&found)?))?,
    }
    out.flush()?;
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

pub async fn rm(target: &Target, args: &VolumeRmArgs) -> Result<()> {
    let rt = target.runtime().await?;
    let force = args.force;
    for_each(&args.names, |name| {
        let mut rt = rt.clone();
        async move {
            rt.remove_volume(RemoveVolumeRequest { name, force })
                .await
                .map(drop)
        }
    })
    .await
}

/// Docker's confirmation before a prune.
pub fn prune_warning(all: bool) -> &'static str {
    if all {
        "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
    }
}

/// What `volume prune` prints for what the daemon deleted.
pub fn render_prune(deleted: &[String], reclaimed: u64) -> String {
    let mut out = String::new();
    if !deleted.is_empty() {
        out.push_str("Deleted Volumes:\n");
        for name in deleted {
            out.push_str(name);
            out.push('\n');
        }
        out.push('\n');
    }
    let reclaimed = if deleted.is_empty() { 0 } else { reclaimed };
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size_4(reclaimed)
    ));
    out
}

pub async fn prune(target: &Target, args: &VolumePruneArgs) -> Result<()> {
    if !args.force {
        {
            let mut out = io::stdout().lock();
            out.write_all(prune_warning(args.all).as_bytes())?;
            out.flush()?;
        }
        let mut answer = String::new();
        io::stdin().lock().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            return Ok(());
        }
    }
    let mut rt = target.runtime().await?;
    let resp = rt
        .prune_volumes(PruneVolumesRequest { all: args.all })
        .await?
        .into_inner();
    let mut out = io::stdout().lock();
    out.write_all(render_prune(&resp.deleted, resp.space_reclaimed).as_bytes())?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(name: &str, labels: &[(&str, &str)]) -> Volume {
        Volume {
            name: name.into(),
            driver: "local".into(),
            mountpoint: format!("/var/lib/rdock/runtimed/volumes/{name}/_data"),
            created_at: "2026-01-02T03:04:05Z".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            anonymous: false,
            used_by: vec![],
        }
    }

    fn ls_args() -> VolumeLsArgs {
        VolumeLsArgs {
            quiet: false,
            format: None,
        }
    }

    #[test]
    fn ls_like_docker() {
        let vols = [
            vol("web10", &[]),
            vol("db", &[("b", "2"), ("a", "1")]),
            vol("web9", &[]),
        ];
        assert_eq!(
            render_ls(&ls_args(), &vols).unwrap(),
            "DRIVER    VOLUME NAME\nlocal     db\nlocal     web9\nlocal     web10\n"
        );
        assert_eq!(
            render_ls(&ls_args(), &[]).unwrap(),
            "DRIVER    VOLUME NAME\n"
        );
        let mut a = ls_args();
        a.quiet = true;
        assert_eq!(render_ls(&a, &vols).unwrap(), "db\nweb9\nweb10\n");
        let mut a = ls_args();
        a.format = Some("json".into());
        assert_eq!(
            render_ls(&a, &vols).unwrap().lines().next().unwrap(),
            r#"{"Availability":"N/A","Driver":"local","Group":"N/A","Labels":"a=1,b=2","Links":"N/A","Mountpoint":"/var/lib/rdock/runtimed/volumes/db/_data","Name":"db","Scope":"local","Size":"N/A","Status":"N/A"}"#
        );
        a.format = Some("{{.Name}}={{.Labels}}".into());
        assert_eq!(render_ls(&a, &vols).unwrap(), "db=a=1,b=2\nweb9=\nweb10=\n");
    }

    #[test]
    fn inspect_like_docker() {
        let text = json_reindent(
            &serde_json::to_string(&vec![inspect_object(&vol("data", &[("k", "v")]))]).unwrap(),
        );
        assert_eq!(
            text,
            "[\n    {\n        \"CreatedAt\": \"2026-01-02T03:04:05Z\",\n        \"Driver\": \"local\",\n        \"Labels\": {\n            \"k\": \"v\"\n        },\n        \"Mountpoint\": \"/var/lib/rdock/runtimed/volumes/data/_data\",\n        \"Name\": \"data\",\n        \"Options\": {},\n        \"Scope\": \"local\"\n    }\n]"
        );
    }

    #[test]
    fn prune_like_docker() {
        assert_eq!(
            render_prune(&["foo".into(), "bar".into()], 2048),
            "Deleted Volumes:\nfoo\nbar\n\nTotal reclaimed space: 2.048kB\n"
        );
        assert_eq!(render_prune(&[], 0), "Total reclaimed space: 0B\n");
        assert!(prune_warning(false).contains("remove anonymous local volumes"));
        assert!(prune_warning(true).contains("remove all local volumes"));
    }
}
