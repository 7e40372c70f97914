//! Container commands other than run/create/start: ps, logs, stop, kill,
//! rm, wait, top. Failures exit 1, as Docker's do; commands that take many
//! containers go on past one that fails.

use std::future::Future;
use std::io::{self, Write};

use anyhow::{anyhow, Result};
use rdock_proto::runtime::v1::{
    ContainerSummary, KillContainerRequest, ListContainersRequest, LogsRequest,
    RemoveContainerRequest, StopContainerRequest, TopRequest, WaitRequest,
};
use serde::Serialize;

use crate::args::{KillArgs, LogsArgs, PsArgs, RmArgs, StopArgs, TopArgs, WaitArgs};
use crate::conn::Target;
use crate::error::{self, Reported};
use crate::format::{
    ago, check_template, created_at, ellipsis, go_quote, now, render_rows, short_id,
    table_min_width,
};

/// Docker's `ps` COMMAND width before it is cut with `…`.
const COMMAND_WIDTH: usize = 20;

/// The JSON object of `ps --format json`, keys sorted as Docker's.
#[derive(Debug, Serialize)]
struct PsJson {
    #[serde(rename = "Command")]
    command: String,
    #[serde(rename = "CreatedAt")]
    created_at: String,
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Image")]
    image: String,
    #[serde(rename = "Names")]
    names: String,
    #[serde(rename = "Ports")]
    ports: String,
    #[serde(rename = "RunningFor")]
    running_for: String,
    #[serde(rename = "State")]
    state: String,
    #[serde(rename = "Status")]
    status: String,
}

/// The COMMAND cell: cut to 20 characters with `…` (unless `--no-trunc`),
/// then Go-quoted — `"sleep 100"`.
pub fn command_cell(command: &str, trunc: bool) -> String {
    if trunc {
        go_quote(&ellipsis(command, COMMAND_WIDTH))
    } else {
        go_quote(command)
    }
}

fn ps_row(c: &ContainerSummary, trunc: bool, now: i64) -> PsJson {
    let id = if trunc { short_id(&c.id) } else { c.id.clone() };
    // An image given by id is shown short, as Docker does.
    let image = if trunc && c.image.starts_with("sha256:") {
        short_id(&c.image)
    } else {
        c.image.clone()
    };
    PsJson {
        command: command_cell(&c.command, trunc),
        created_at: created_at(c.created),
        id,
        image,
        names: c.name.trim_start_matches('/').to_string(),
        ports: c.ports.clone(),
        running_for: ago(c.created, now),
        state: c.state.clone(),
        status: c.status.clone(),
    }
}

/// What `ps` prints for these containers (newest first).
pub fn render_ps(args: &PsArgs, containers: &[ContainerSummary], now: i64) -> Result<String> {
    let mut list: Vec<&ContainerSummary> = containers.iter().collect();
    list.sort_by_key(|c| std::cmp::Reverse(c.created));
    let trunc = !args.no_trunc;
    let rows: Vec<PsJson> = list.iter().map(|c| ps_row(c, trunc, now)).collect();
    if args.quiet {
        let mut out = String::new();
        for r in &rows {
            out.push_str(&r.id);
            out.push('\n');
        }
        return Ok(out);
    }
    render_rows(
        args.format.as_deref(),
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ],
        &rows,
        |r| {
            vec![
                r.id.clone(),
                r.image.clone(),
                r.command.clone(),
                r.running_for.clone(),
                r.status.clone(),
                r.ports.clone(),
                r.names.clone(),
            ]
        },
    )
}

pub async fn ps(target: &Target, args: &PsArgs) -> Result<()> {
    // Fail on a bad template before talking to the daemon.
    if !args.quiet {
        check_template(args.format.as_deref())?;
    }
    let mut rt = target.runtime().await?;
    let list = rt
        .list_containers(ListContainersRequest { all: args.all })
        .await?
        .into_inner();
    let text = render_ps(args, &list.containers, now())?;
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// `--tail`: "all" (or a negative number) → -1, else the count.
pub fn parse_tail(s: &str) -> Result<i64> {
    let s = s.trim();
    if s == "all" {
        return Ok(-1);
    }
    let n: i64 = s.parse().map_err(|_| {
        anyhow!("invalid argument \"{s}\" for \"-n, --tail\" flag: expected a number or \"all\"")
    })?;
    Ok(if n < 0 { -1 } else { n })
}

pub async fn logs(target: &Target, args: &LogsArgs) -> Result<()> {
    let tail = parse_tail(&args.tail)?;
    let mut rt = target.runtime().await?;
    let mut stream = rt
        .logs(LogsRequest {
            id: args.container.clone(),
            follow: args.follow,
            tail,
            stdout: true,
            stderr: true,
        })
        .await?
        .into_inner();
    while let Some(entry) = stream.message().await? {
        let write = |w: &mut dyn Write| -> io::Result<()> {
            if args.timestamps {
                write!(w, "{} ", entry.time)?;
            }
            w.write_all(&entry.line)?;
            w.flush()
        };
        if entry.stream == "stderr" {
            write(&mut io::stderr().lock())?;
        } else {
            write(&mut io::stdout().lock())?;
        }
    }
    Ok(())
}

/// Runs `call` for each name in turn: prints the name when it succeeds, one
/// error line when it fails, and fails at the end (exit 1) if any did.
pub async fn for_each<F, Fut>(names: &[String], mut call: F) -> Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(), tonic::Status>>,
{
    let mut failed = false;
    for name in names {
        match call(name.clone()).await {
            Ok(()) => {
                let mut out = io::stdout().lock();
                writeln!(out, "{name}")?;
                out.flush()?;
            }
            Err(status) => {
                failed = true;
                error::print_line(&error::status_message(&status));
            }
        }
    }
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

pub async fn stop(target: &Target, args: &StopArgs) -> Result<()> {
    let rt = target.runtime().await?;
    let timeout = args.time.unwrap_or(-1);
    for_each(&args.containers, |id| {
        let mut rt = rt.clone();
        async move {
            rt.stop_container(StopContainerRequest { id, timeout })
                .await
                .map(drop)
        }
    })
    .await
}

pub async fn kill(target: &Target, args: &KillArgs) -> Result<()> {
    let rt = target.runtime().await?;
    for_each(&args.containers, |id| {
        let mut rt = rt.clone();
        let signal = args.signal.clone();
        async move {
            rt.kill_container(KillContainerRequest { id, signal })
                .await
                .map(drop)
        }
    })
    .await
}

pub async fn rm(target: &Target, args: &RmArgs) -> Result<()> {
    let rt = target.runtime().await?;
    let (force, volumes) = (args.force, args.volumes);
    for_each(&args.containers, |id| {
        let mut rt = rt.clone();
        async move {
            rt.remove_container(RemoveContainerRequest { id, force, volumes })
                .await
                .map(drop)
        }
    })
    .await
}

/// Prints each container's exit code, one a line, as it stops.
pub async fn wait(target: &Target, args: &WaitArgs) -> Result<()> {
    let mut rt = target.runtime().await?;
    let mut failed = false;
    for id in &args.containers {
        match rt
            .wait(WaitRequest {
                id: id.clone(),
                removed: false,
            })
            .await
        {
            Ok(resp) => {
                let mut out = io::stdout().lock();
                writeln!(out, "{}", resp.into_inner().exit_code)?;
                out.flush()?;
            }
            Err(status) => {
                failed = true;
                error::print_line(&error::status_message(&status));
            }
        }
    }
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

/// `top`'s table: the daemon's titles and rows, in Docker's `top` layout
/// (columns at least 20 wide, 3 spaces apart).
pub fn render_top(titles: &[String], rows: &[Vec<String>]) -> String {
    let mut cells = vec![titles.to_vec()];
    cells.extend(rows.iter().cloned());
    table_min_width(&cells, 20)
}

pub async fn top(target: &Target, args: &TopArgs) -> Result<()> {
    let mut rt = target.runtime().await?;
    let resp = rt
        .top(TopRequest {
            id: args.container.clone(),
        })
        .await?
        .into_inner();
    let rows: Vec<Vec<String>> = resp.processes.into_iter().map(|r| r.fields).collect();
    let text = render_top(&resp.titles, &rows);
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_727_386_302;

    fn c(id: &str, name: &str, command: &str, created: i64, status: &str) -> ContainerSummary {
        ContainerSummary {
            id: id.into(),
            name: name.into(),
            image: "busybox".into(),
            command: command.into(),
            created,
            state: if status.starts_with("Up") {
                "running"
            } else {
                "exited"
            }
            .into(),
            status: status.into(),
            ports: String::new(),
            exit_code: 0,
        }
    }

    fn args() -> PsArgs {
        PsArgs {
            all: false,
            quiet: false,
            no_trunc: false,
            format: None,
        }
    }

    fn sample() -> Vec<ContainerSummary> {
        vec![
            c(
                "4f2a9d1c3b5e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8",
                "/old",
                "sh -c 'while true; do echo hi; sleep 1; done'",
                NOW - 2 * 3600,
                "Exited (0) 2 hours ago",
            ),
            c(
                "9b8a7c6d5e4f30211a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8",
                "web",
                "sleep 100",
                NOW - 3,
                "Up 2 seconds",
            ),
        ]
    }

    #[test]
    fn command_cells_like_docker() {
        assert_eq!(command_cell("sleep 100", true), "\"sleep 100\"");
        assert_eq!(command_cell("", true), "\"\"");
        assert_eq!(
            command_cell("sh -c 'while true; do echo hi; sleep 1; done'", true),
            "\"sh -c 'while true; …\""
        );
        assert_eq!(command_cell("echo \"a\"", true), "\"echo \\\"a\\\"\"");
        assert_eq!(
            command_cell("sh -c 'while true; do echo hi; sleep 1; done'", false),
            "\"sh -c 'while true; do echo hi; sleep 1; done'\""
        );
    }

    #[test]
    fn ps_table_like_docker() {
        assert_eq!(
            render_ps(&args(), &sample(), NOW).unwrap(),
            "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS                   PORTS     NAMES\n\
             9b8a7c6d5e4f   busybox   \"sleep 100\"              3 seconds ago   Up 2 seconds                       web\n\
             4f2a9d1c3b5e   busybox   \"sh -c 'while true; …\"   2 hours ago     Exited (0) 2 hours ago             old\n"
        );
        assert_eq!(
            render_ps(&args(), &[], NOW).unwrap(),
            "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
        );
    }

    #[test]
    fn ps_quiet_json_template() {
        let mut a = args();
        a.quiet = true;
        assert_eq!(
            render_ps(&a, &sample(), NOW).unwrap(),
            "9b8a7c6d5e4f\n4f2a9d1c3b5e\n"
        );
        a.no_trunc = true;
        assert!(render_ps(&a, &sample(), NOW)
            .unwrap()
            .starts_with("9b8a7c6d5e4f30211a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8\n"));

        let mut a = args();
        a.format = Some("json".into());
        let text = render_ps(&a, &sample(), NOW).unwrap();
        assert_eq!(text.lines().count(), 2);
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            format!(
                r#"{{"Command":"\"sleep 100\"","CreatedAt":"{}","ID":"9b8a7c6d5e4f","Image":"busybox","Names":"web","Ports":"","RunningFor":"3 seconds ago","State":"running","Status":"Up 2 seconds"}}"#,
                created_at(NOW - 3)
            )
        );

        let mut a = args();
        a.format = Some("{{.Names}} {{.State}}".into());
        assert_eq!(
            render_ps(&a, &sample(), NOW).unwrap(),
            "web running\nold exited\n"
        );
        a.format = Some("table {{.ID}}".into());
        assert!(render_ps(&a, &sample(), NOW).is_err());
    }

    #[test]
    fn tail_values() {
        assert_eq!(parse_tail("all").unwrap(), -1);
        assert_eq!(parse_tail("5").unwrap(), 5);
        assert_eq!(parse_tail("0").unwrap(), 0);
        assert_eq!(parse_tail("-3").unwrap(), -1);
        assert_eq!(
            parse_tail("x").unwrap_err().to_string(),
            "invalid argument \"x\" for \"-n, --tail\" flag: expected a number or \"all\""
        );
    }

    #[test]
    fn top_table_like_docker() {
        let titles: Vec<String> = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
            .map(String::from)
            .to_vec();
        let rows = vec![[
            "root",
            "4242",
            "4200",
            "0",
            "10:00",
            "?",
            "00:00:00",
            "sleep 100",
        ]
        .map(String::from)
        .to_vec()];
        assert_eq!(
            render_top(&titles, &rows),
            "UID                 PID                 PPID                C                   STIME               TTY                 TIME                CMD\n\
             root                4242                4200                0                   10:00               ?                   00:00:00            sleep 100\n"
        );
    }
}
