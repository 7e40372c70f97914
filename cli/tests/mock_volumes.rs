//! Volumes, mounts on `run`/`create`, `rm -v` and `network
//! connect/disconnect` with the real `rdockctl` binary against the mock
//! daemons.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap is for here

mod common;

use common::{start, text, Env, MockContainer};

const WEB_ID: &str = "9b8a7c6d5e4f30211a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";

async fn env() -> Env {
    let env = start().await;
    env.images.seen.lock().unwrap().pulled = true;
    env.runtime.add(MockContainer::new(
        WEB_ID,
        "web",
        &["sleep"],
        60,
        "running",
        "Up 1 minute",
    ));
    env
}

#[tokio::test(flavor = "multi_thread")]
async fn volume_create_ls_inspect_rm_prune() {
    let env = env().await;

    let out = env
        .run(
            &[
                "volume", "create", "--label", "b=2", "--label", "a=1", "data",
            ],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "data\n");
    let out = env.run(&["volume", "create"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    let generated = text(&out.stdout).trim().to_string();
    assert_eq!(generated.len(), 64);
    for name in ["cache", "web10", "web9"] {
        let out = env.run(&["volume", "create", name], None, &[]).await;
        assert_eq!(out.status.code(), Some(0));
    }
    let out = env.run(&["volume", "create", "bad/name"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr)
        .starts_with("rdockctl: create bad/name: \"bad/name\" includes invalid characters"));
    let out = env
        .run(&["volume", "create", "-d", "nfs", "x"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: volume driver \"nfs\" is not supported: rdock has only \"local\"\n"
    );

    // ls: Docker's table sorted by name, -q, json, templates.
    let out = env.run(&["volume", "ls"], None, &[]).await;
    assert_eq!(
        text(&out.stdout),
        format!(
            "DRIVER    VOLUME NAME\nlocal     {generated}\nlocal     cache\nlocal     data\nlocal     web9\nlocal     web10\n"
        )
    );
    let out = env.run(&["volume", "list", "-q"], None, &[]).await;
    assert_eq!(
        text(&out.stdout),
        format!("{generated}\ncache\ndata\nweb9\nweb10\n")
    );
    let out = env
        .run(
            &[
                "volume",
                "ls",
                "--format",
                "{{.Name}} {{.Labels}} {{.Mountpoint}}",
            ],
            None,
            &[],
        )
        .await;
    assert!(text(&out.stdout).contains("data a=1,b=2 /var/lib/rdock/runtimed/volumes/data/_data\n"));
    let out = env
        .run(&["volume", "ls", "--format", "json"], None, &[])
        .await;
    let first: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().nth(2).unwrap()).unwrap();
    assert_eq!(first["Name"], "data");
    assert_eq!(first["Driver"], "local");
    assert_eq!(first["Scope"], "local");

    // inspect: Docker's object; a missing one is an error line, exit 1.
    let out = env.run(&["volume", "inspect", "data"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "[\n    {\n        \"CreatedAt\": \"2026-01-02T03:04:05Z\",\n        \"Driver\": \"local\",\n        \"Labels\": {\n            \"a\": \"1\",\n            \"b\": \"2\"\n        },\n        \"Mountpoint\": \"/var/lib/rdock/runtimed/volumes/data/_data\",\n        \"Name\": \"data\",\n        \"Options\": {},\n        \"Scope\": \"local\"\n    }\n]\n"
    );
    let json = env
        .run(
            &["volume", "inspect", "--format", "json", "data"],
            None,
            &[],
        )
        .await;
    assert_eq!(json.stdout, out.stdout);
    let out = env
        .run(
            &[
                "volume",
                "inspect",
                "-f",
                "{{.Mountpoint}}",
                "cache",
                "ghost",
            ],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "/var/lib/rdock/runtimed/volumes/cache/_data\n"
    );
    assert_eq!(text(&out.stderr), "rdockctl: get ghost: no such volume\n");

    // rm: each name, going on past a failure.
    env.runtime
        .state
        .lock()
        .unwrap()
        .more
        .volumes_in_use
        .push("cache".into());
    let out = env
        .run(
            &["volume", "rm", "web9", "cache", "ghost", "web10"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "web9\nweb10\n");
    assert_eq!(
        text(&out.stderr),
        "rdockctl: remove cache: volume is in use - [4f2a9d1c3b5e]\nrdockctl: get ghost: no such volume\n"
    );
    let out = env
        .run(&["volume", "remove", "-f", "ghost"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        env.runtime
            .state
            .lock()
            .unwrap()
            .more
            .removed_volumes
            .last()
            .unwrap(),
        &("ghost".to_string(), true)
    );

    // prune: asks first (no answer, nothing done), then Docker's report.
    let no = env.dir.path().join("no");
    std::fs::write(&no, "n\n").unwrap();
    let out = env.run(&["volume", "prune"], Some(&no), &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
    );
    assert!(env.runtime.state.lock().unwrap().more.prunes.is_empty());
    let yes = env.dir.path().join("yes");
    std::fs::write(&yes, "y\n").unwrap();
    let out = env.run(&["volume", "prune", "-a"], Some(&yes), &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!(
            "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] Deleted Volumes:\n{generated}\ndata\n\nTotal reclaimed space: 3kB\n"
        )
    );
    let out = env.run(&["volume", "prune", "-f"], None, &[]).await;
    assert_eq!(text(&out.stdout), "Total reclaimed space: 0B\n");
    assert_eq!(env.runtime.state.lock().unwrap().more.prunes, [true, false]);
}

#[tokio::test(flavor = "multi_thread")]
async fn mounts_reach_the_request() {
    let env = env().await;
    let host = env.dir.path().join("hostdir");
    std::fs::create_dir(&host).unwrap();
    let bind = format!("{}:/data:ro,z", host.display());
    let out = env
        .run(
            &[
                "create",
                "-v",
                &bind,
                "--volume",
                "cache:/var/cache:nocopy",
                "-v",
                "/anon",
                "--mount",
                "type=bind,src=/srv,dst=/srv,readonly,bind-propagation=rslave",
                "--mount",
                "type=tmpfs,target=/scratch,tmpfs-size=64m,tmpfs-mode=1700",
                "--tmpfs",
                "/run:size=1m,noexec",
                "--read-only",
                "--volumes-from",
                "web:ro",
                "busybox",
            ],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    {
        let st = env.runtime.state.lock().unwrap();
        let r = st.created.last().unwrap();
        assert!(r.read_only);
        assert_eq!(r.volumes_from, ["web:ro"]);
        let m: Vec<(&str, &str, &str, bool)> = r
            .mounts
            .iter()
            .map(|m| {
                (
                    m.r#type.as_str(),
                    m.source.as_str(),
                    m.target.as_str(),
                    m.read_only,
                )
            })
            .collect();
        let host_s = host.to_str().unwrap();
        assert_eq!(
            m,
            [
                ("bind", host_s, "/data", true),
                ("volume", "cache", "/var/cache", false),
                ("volume", "", "/anon", false),
                ("bind", "/srv", "/srv", true),
                ("tmpfs", "", "/scratch", false),
                ("tmpfs", "", "/run", false),
            ]
        );
        assert!(r.mounts[0].create_host_path && !r.mounts[3].create_host_path);
        assert_eq!(r.mounts[0].relabel, "z");
        assert_eq!(r.mounts[0].propagation, "rprivate");
        assert_eq!(r.mounts[3].propagation, "rslave");
        assert!(r.mounts[1].no_copy);
        assert_eq!(
            (r.mounts[4].tmpfs_size, r.mounts[4].tmpfs_mode),
            (64 << 20, 0o1700)
        );
        assert_eq!(r.mounts[5].tmpfs_size, 1 << 20);
        assert_eq!(r.mounts[5].tmpfs_options, ["noexec"]);
    }

    // Bad specs: Docker's messages, exit 125, nothing created.
    let before = env.runtime.state.lock().unwrap().created.len();
    for (args, line) in [
        (&["run", "-v", "/foo:rw", "busybox"][..], "invalid volume specification: '/foo:rw'"),
        (&["run", "-v", ":/x", "busybox"], "invalid spec: :/x: empty section between colons"),
        (&["create", "-v", "/a:/b:bogus", "busybox"], "invalid mode: bogus"),
        (
            &["run", "-v", "rel/dir:/x", "busybox"],
            "create rel/dir: \"rel/dir\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path",
        ),
        (
            &["run", "-v", "/a:b", "busybox"],
            "invalid volume specification: '/a:b': invalid mount config for type \"bind\": invalid mount path: 'b' mount path must be absolute",
        ),
        (
            &["run", "--mount", "type=bind,src=/x", "busybox"],
            "invalid argument \"type=bind,src=/x\" for \"--mount\" flag: target is required",
        ),
        (
            &["run", "--mount", "type=volume,dst=/x,ro", "busybox"],
            "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes",
        ),
        (&["run", "--tmpfs", "run", "busybox"], "invalid --tmpfs \"run\": invalid mount path: 'run' mount path must be absolute"),
        (&["run", "--volumes-from", "web:shared", "busybox"], "invalid mode: shared"),
        (&["run", "-v", "/a:/x", "--tmpfs", "/x", "busybox"], "Duplicate mount point: /x"),
    ] {
        let out = env.run(args, None, &[]).await;
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        assert_eq!(text(&out.stderr), format!("rdockctl: {line}\n"), "{args:?}");
    }
    assert_eq!(env.runtime.state.lock().unwrap().created.len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn rm_volumes_and_network_connect() {
    let env = env().await;
    let out = env
        .run(&["create", "--name", "c1", "busybox"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(0));
    let out = env.run(&["rm", "-v", "c1"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "c1\n");
    let out = env
        .run(&["create", "--name", "c2", "busybox"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(0));
    let out = env.run(&["container", "rm", "c2"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(env.runtime.state.lock().unwrap().removed_volumes, ["c1"]);

    let out = env
        .run(
            &[
                "network", "connect", "--alias", "db", "--alias", "sql", "app", "web",
            ],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        (String::new(), String::new())
    );
    let out = env
        .run(&["network", "connect", "nope", "web"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "rdockctl: network nope not found\n");
    let out = env
        .run(&["network", "disconnect", "-f", "app", "web"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(0));
    let st = env.runtime.state.lock().unwrap();
    let c = &st.more.connects[0];
    assert_eq!((c.id.as_str(), c.network.as_str()), ("web", "app"));
    assert_eq!(c.aliases, ["db", "sql"]);
    let d = &st.more.disconnects[0];
    assert_eq!(
        (d.id.as_str(), d.network.as_str(), d.force),
        ("web", "app", true)
    );
}
