//! Runs the real `rdockctl` binary against in-process mock daemons (mutual
//! TLS with a fresh PKI) and checks its exact output and exit codes.
//! End-to-end tests against the real daemons live in the workspace `tests/`.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap is for here

mod common;

use common::{start, text, BB_ID};

#[tokio::test(flavor = "multi_thread")]
async fn commands_against_mock_daemons() {
    let env = start().await;

    // pull: plain progress lines, one per phase, then Docker's closing lines.
    let out = env.run(&["pull", "busybox"], None, &[]).await;
    assert_eq!(text(&out.stderr), "");
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        "latest: Pulling from library/busybox\n\
         a1b2c3d4e5f6: Waiting\n\
         a1b2c3d4e5f6: Downloading 0B/3.4MB\n\
         a1b2c3d4e5f6: Verifying Checksum\n\
         a1b2c3d4e5f6: Extracting 0B/3.4MB\n\
         a1b2c3d4e5f6: Pull complete\n\
         Digest: sha256:d1d1\n\
         Status: Downloaded newer image for busybox:latest\n\
         docker.io/library/busybox:latest\n"
    );

    let out = env.run(&["pull", "nope"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "rdockctl: pull nope: manifest unknown\n");

    // push
    let out = env
        .run(&["push", "127.0.0.1:5000/test/bb:v1"], None, &[])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "The push refers to repository [127.0.0.1:5000/test/bb]\n\
         a1b2c3d4e5f6: Waiting\n\
         a1b2c3d4e5f6: Pushing 10B/100B\n\
         a1b2c3d4e5f6: Pushed\n\
         v1: digest: sha256:feed\n"
    );

    // images
    let out = env.run(&["images"], None, &[]).await;
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    // CREATED depends on today's date: its column is as wide as its widest cell.
    let size_col = lines[0].find("SIZE").unwrap();
    assert!(
        lines[0].starts_with("REPOSITORY               TAG       IMAGE ID       CREATED   "),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("127.0.0.1:5000/test/bb   v1        27a71e19c956   "),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("busybox                  latest    27a71e19c956   "),
        "{stdout}"
    );
    assert!(lines[2].contains(" years ago   "), "{stdout}");
    assert_eq!(&lines[2][size_col..], "4.26MB");
    assert!(
        lines[3].starts_with("<none>                   <none>    0123456789ab   N/A   "),
        "{stdout}"
    );
    assert_eq!(&lines[3][size_col..], "512B");
    let out = env.run(&["image", "ls", "-q"], None, &[]).await;
    assert_eq!(text(&out.stdout), "27a71e19c956\n0123456789ab\n");

    // inspect
    let out = env.run(&["inspect", "busybox"], None, &[]).await;
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["Id"], BB_ID);
    assert_eq!(v[0]["RepoTags"][0], "busybox:latest");
    assert_eq!(v[0]["Config"]["Cmd"][0], "sh");
    assert_eq!(v[0]["RootFS"]["Layers"][0], "sha256:l1");
    let out = env
        .run(
            &[
                "image",
                "inspect",
                "-f",
                "{{.Id}} {{.Config.Cmd}} {{json .Config.Env}}",
                "busybox",
            ],
            None,
            &[],
        )
        .await;
    assert_eq!(text(&out.stdout), format!("{BB_ID} [sh] [\"PATH=/bin\"]\n"));
    let out = env
        .run(&["inspect", "-f", "{{.Os}}", "busybox", "ghost"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "linux\n");
    assert_eq!(text(&out.stderr), "rdockctl: no such object: ghost\n");
    let out = env.run(&["image", "inspect", "ghost"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "[]\n");
    assert_eq!(text(&out.stderr), "rdockctl: no such image: ghost\n");
    let out = env
        .run(&["inspect", "-f", "{{.Id", "busybox"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("rdockctl: template parsing error"));

    // tag, rmi
    let out = env.run(&["tag", "busybox", "bb:2"], None, &[]).await;
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "");
    let out = env.run(&["rmi", "ghost", "busybox"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        format!("Untagged: busybox:latest\nDeleted: {BB_ID}\n")
    );
    assert_eq!(text(&out.stderr), "rdockctl: no such image: ghost\n");

    // import from a file and from stdin, in 1 MiB chunks after the header.
    let tar = env.dir.path().join("rootfs.tar");
    std::fs::write(&tar, vec![7u8; (5 << 19) + 3]).unwrap();
    let out = env
        .run(
            &[
                "import",
                tar.to_str().unwrap(),
                "mine:1",
                "--change",
                "CMD [\"sh\"]",
                "-m",
                "hi",
            ],
            None,
            &[],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("sha256:{:032x}{:032x}\n", (5u64 << 19) + 3, 3)
    );
    {
        let seen = env.images.seen.lock().unwrap();
        let h = seen.import_header.as_ref().unwrap();
        assert_eq!((h.reference.as_str(), h.message.as_str()), ("mine:1", "hi"));
        assert_eq!(h.changes, ["CMD [\"sh\"]"]);
    }
    let out = env.run(&["import", "-", "mine:2"], Some(&tar), &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("sha256:{:032x}{:032x}\n", (5u64 << 19) + 3, 3)
    );
    let out = env
        .run(&["import", "/nonexistent.tar", "x"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("rdockctl: open /nonexistent.tar: "));

    // info: netd is down.
    let out = env.run(&["system", "info"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let b = env.base;
    assert_eq!(
        text(&out.stdout),
        format!(
            "imaged: SERVING (127.0.0.1:{b})\nruntimed: SERVING (127.0.0.1:{})\nnetd: UNREACHABLE (127.0.0.1:{})\n",
            b + 1,
            b + 2
        )
    );
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "rdockctl: cannot reach rdock-netd at 127.0.0.1:{}",
            b + 2
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);

    // version
    let out = env.run(&["version"], None, &[]).await;
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!(
            "Client:\n Version:  {}\nServer:\n Version:  9.9.9\n Runtime:  runc\n",
            env!("CARGO_PKG_VERSION")
        )
    );

    // A viewer certificate through the flags; a missing key is one line.
    let out = env
        .run(&["--tlskey", "/nonexistent.key", "images"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: tls: read /nonexistent.key: No such file or directory (os error 2)\n"
    );

    // Usage errors are clap's: exit 2.
    let out = env.run(&["rmi"], None, &[]).await;
    assert_eq!(out.status.code(), Some(2));

    // With OTLP configured, the CLI's span context reaches the daemon.
    let out = env
        .run(
            &["pull", "busybox"],
            None,
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("\nStatus: Image is up to date for busybox:latest\n"),
        "{}",
        text(&out.stdout)
    );
    let seen = env.images.seen.lock().unwrap();
    assert!(
        seen.traceparent
            .iter()
            .any(|t| t.starts_with("00-") && !t.contains("00000000000000000000000000000000")),
        "{:?}",
        seen.traceparent
    );
}

#[tokio::test]
async fn pki_commands() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let run = |args: Vec<String>| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rdockctl"))
            .args(args)
            .output()
            .await
            .unwrap()
    };
    let p = pki.to_str().unwrap().to_string();
    let out = run(vec![
        "pki".into(),
        "init".into(),
        "--dir".into(),
        p.clone(),
        "--host".into(),
        "node1".into(),
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expect: String = ["ca", "imaged", "runtimed", "netd", "admin", "viewer"]
        .iter()
        .map(|n| format!("{p}/{n}.crt\n{p}/{n}.key\n"))
        .collect();
    assert_eq!(text(&out.stdout), expect);

    let out = run(vec!["pki".into(), "init".into(), "--dir".into(), p.clone()]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("rdockctl: pki: a CA already exists in "));
    assert_eq!(text(&out.stderr).lines().count(), 1);

    let issue = |name: &str, role: &str| {
        vec![
            "pki".into(),
            "issue".into(),
            "--name".into(),
            name.to_string(),
            "--role".into(),
            role.to_string(),
            "--dir".into(),
            p.clone(),
        ]
    };
    let out = run(issue("alice", "viewer")).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{p}/alice.crt\n{p}/alice.key\n"));
    let out = run(issue("bob", "root")).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: unknown role \"root\": expected admin or viewer\n"
    );
    let out = run(issue("../x", "admin")).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("rdockctl: pki: invalid certificate name"));
}
