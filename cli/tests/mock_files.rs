//! `cp`, `diff`, `commit`, `export` and `history` with the real `rdockctl`
//! binary against the mock daemons: Docker's cp path semantics, output
//! shapes and messages.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap is for here

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{start, text, Env, MockContainer, COMMIT_ID};

const BOX_ID: &str = "b0b0b0b0c3b5e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";

/// A running `box` whose files are: /etc/hostname, /etc/dir/{a,b},
/// /etc/link -> hostname, /etc/dirlink -> dir, /opt.
async fn with_box() -> Env {
    let env = start().await;
    env.images.seen.lock().unwrap().pulled = true;
    env.runtime.add(MockContainer::new(
        BOX_ID,
        "box",
        &["sleep"],
        60,
        "running",
        "Up 1 minute",
    ));
    let root = env.runtime.rootfs("box");
    fs::create_dir_all(root.join("etc/dir")).unwrap();
    fs::create_dir_all(root.join("opt")).unwrap();
    fs::write(root.join("etc/hostname"), "box\n").unwrap();
    fs::write(root.join("etc/dir/a"), "A").unwrap();
    fs::write(root.join("etc/dir/b"), "B").unwrap();
    std::os::unix::fs::symlink("hostname", root.join("etc/link")).unwrap();
    std::os::unix::fs::symlink("dir", root.join("etc/dirlink")).unwrap();
    env
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[tokio::test(flavor = "multi_thread")]
async fn cp_from_a_container_like_docker() {
    let env = with_box().await;
    let tmp = env.dir.path().join("host");
    fs::create_dir_all(tmp.join("out")).unwrap();
    let t = |p: &str| tmp.join(p).to_str().unwrap().to_string();
    let cp = |src: String, dst: String| {
        let env = &env;
        async move { env.run(&["cp", &src, &dst], None, &[]).await }
    };

    // A file into an existing directory keeps its name; to a new name it
    // is renamed; over an existing file it replaces it.
    let out = cp("box:/etc/hostname".into(), t("out")).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        (String::new(), String::new())
    );
    assert_eq!(read(&tmp.join("out/hostname")), "box\n");
    let out = cp("box:etc/hostname".into(), t("renamed")).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(read(&tmp.join("renamed")), "box\n");
    fs::write(tmp.join("existing"), "old").unwrap();
    let out = cp("box:/etc/hostname".into(), t("existing")).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(read(&tmp.join("existing")), "box\n");

    // A directory: into an existing one, or renamed to a new one; `/.`
    // copies its contents.
    let out = cp("box:/etc/dir".into(), t("out")).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(read(&tmp.join("out/dir/a")), "A");
    let out = cp("box:/etc/dir".into(), t("newdir")).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(read(&tmp.join("newdir/b")), "B");
    assert!(!tmp.join("newdir/dir").exists());
    fs::create_dir(tmp.join("contents")).unwrap();
    let out = cp("box:/etc/dir/.".into(), t("contents")).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(read(&tmp.join("contents/a")), "A");
    assert!(!tmp.join("contents/dir").exists());
    let out = cp("box:/etc/dir/.".into(), t("fresh")).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(read(&tmp.join("fresh/a")), "A");

    // Symlinks: copied as links, or followed with -L under the link's name.
    let out = cp("box:/etc/link".into(), t("out")).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        fs::read_link(tmp.join("out/link")).unwrap(),
        Path::new("hostname")
    );
    let out = env
        .run(&["cp", "-L", "box:/etc/link", &t("deref")], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(read(&tmp.join("deref")), "box\n");
    assert!(
        env.runtime
            .state
            .lock()
            .unwrap()
            .more
            .copy_from
            .last()
            .unwrap()
            .follow_link
    );

    // `-`: the daemon's tar on stdout, as is.
    let out = cp("box:/etc/dir".into(), "-".into()).await;
    assert_eq!(out.status.code(), Some(0));
    let mut names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| {
            let name = e.unwrap().path().unwrap().to_string_lossy().into_owned();
            name.trim_end_matches('/').to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["dir", "dir/a", "dir/b"]);

    // Docker's errors.
    let nodir = format!("{}/", t("nodir"));
    for (src, dst, line) in [
        (
            "box:/etc/hostname".to_string(),
            nodir,
            "no such directory".to_string(),
        ),
        (
            "box:/etc/hostname".into(),
            t("missing/x"),
            format!(
                "invalid output path: directory \"{}\" does not exist",
                t("missing")
            ),
        ),
        (
            "box:/nosuch".into(),
            t("x"),
            "Could not find the file /nosuch in container box".into(),
        ),
        (
            "box:/etc/dir".into(),
            t("existing"),
            "cannot copy directory".into(),
        ),
        (
            "box:/etc/hostname".into(),
            format!("{}/", t("existing")),
            format!("stat {}/: not a directory", t("existing")),
        ),
        (
            "ghost:/etc".into(),
            t("x"),
            "no such container: ghost".into(),
        ),
    ] {
        let out = cp(src.clone(), dst.clone()).await;
        assert_eq!(out.status.code(), Some(1), "{src} {dst}");
        assert_eq!(
            text(&out.stderr),
            format!("rdockctl: {line}\n"),
            "{src} {dst}"
        );
    }
    assert!(!tmp.join("x").exists() && !tmp.join("nodir").exists());

    // A tar from the daemon that tries to climb out is refused, and nothing
    // is written beside the destination.
    fs::create_dir(tmp.join("dest")).unwrap();
    let out = cp("box:/evil".into(), t("dest")).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("is not a directory (refusing to follow a link out of the destination)"),
        "{}",
        text(&out.stderr)
    );
    assert!(!tmp.join("escaped").exists());
    assert!(!env.dir.path().join("escaped").exists());
    // Nothing of it is left in the destination either.
    assert_eq!(fs::read_dir(tmp.join("dest")).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn cp_to_a_container_like_docker() {
    let env = with_box().await;
    let tmp = env.dir.path().join("host");
    fs::create_dir_all(tmp.join("tree/sub")).unwrap();
    fs::write(tmp.join("local.txt"), "local").unwrap();
    fs::write(tmp.join("tree/one"), "1").unwrap();
    fs::write(tmp.join("tree/sub/two"), "2").unwrap();
    let root = env.runtime.rootfs("box");
    let t = |p: &str| tmp.join(p).to_str().unwrap().to_string();
    let last = |env: &Env| {
        let st = env.runtime.state.lock().unwrap();
        let mut names = st.more.copy_to_entries.last().unwrap().clone();
        names
            .iter_mut()
            .for_each(|n| *n = n.trim_end_matches('/').to_string());
        (st.more.copy_to.last().unwrap().clone(), names)
    };

    // Into an existing directory, under its own name.
    let out = env
        .run(&["cp", &t("local.txt"), "box:/etc/"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(read(&root.join("etc/local.txt")), "local");
    let (start, names) = last(&env);
    assert_eq!((start.path.as_str(), start.keep_owner), ("/etc", false));
    assert_eq!(names, ["local.txt"]);

    // To a new name: extracted in the parent, renamed.
    let out = env
        .run(
            &["cp", "-a", &t("local.txt"), "box:/etc/renamed"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(read(&root.join("etc/renamed")), "local");
    let (start, names) = last(&env);
    assert_eq!((start.path.as_str(), start.keep_owner), ("/etc", true));
    assert_eq!(names, ["renamed"]);

    // A directory to a new name, and a directory's contents (`/.`).
    let out = env
        .run(&["cp", &t("tree"), "box:/opt/tree2"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(read(&root.join("opt/tree2/sub/two")), "2");
    let (start, names) = last(&env);
    assert_eq!(start.path, "/opt");
    assert_eq!(names, ["tree2", "tree2/one", "tree2/sub", "tree2/sub/two"]);
    let out = env
        .run(
            &["cp", &format!("{}/.", t("tree")), "box:/etc/dir"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(read(&root.join("etc/dir/one")), "1");
    assert_eq!(last(&env).1, ["one", "sub", "sub/two"]);

    // Through a symlinked directory in the container.
    let out = env
        .run(&["cp", &t("local.txt"), "box:/etc/dirlink"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(last(&env).0.path, "/etc/dir");
    assert_eq!(read(&root.join("etc/dir/local.txt")), "local");

    // `-`: a tar on stdin, into a directory only.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(5);
    b.append_data(&mut h, "piped.txt", &b"piped"[..]).unwrap();
    let tarfile = tmp.join("in.tar");
    fs::write(&tarfile, b.into_inner().unwrap()).unwrap();
    let out = env.run(&["cp", "-", "box:/etc"], Some(&tarfile), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(read(&root.join("etc/piped.txt")), "piped");
    let sent = env.runtime.state.lock().unwrap().more.copy_to.len();
    let out = env
        .run(&["cp", "-", "box:/etc/hostname"], Some(&tarfile), &[])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "rdockctl: destination \"box:/etc/hostname\" must be a directory\n"
    );

    // Docker's errors, none of which copies anything.
    for (args, line) in [
        (
            vec!["cp".to_string(), t("tree"), "box:/etc/hostname".into()],
            "cannot copy directory".to_string(),
        ),
        (
            vec!["cp".into(), t("local.txt"), "box:/etc/nodir/".into()],
            "no such directory".into(),
        ),
        (
            vec!["cp".into(), t("nope"), "box:/etc".into()],
            format!("lstat {}: no such file or directory", t("nope")),
        ),
        (
            vec!["cp".into(), t("local.txt"), "box:/no/such/dir".into()],
            "Could not find the file /no/such in container box".into(),
        ),
        (
            vec!["cp".into(), t("a"), t("b")],
            "must specify at least one container source".into(),
        ),
        (
            vec!["cp".into(), "box:/a".into(), "web:/b".into()],
            "copying between containers is not supported".into(),
        ),
        (
            vec!["cp".into(), String::new(), "box:/".into()],
            "source can not be empty".into(),
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.run(&args, None, &[]).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&out.stderr), format!("rdockctl: {line}\n"), "{args:?}");
    }
    assert_eq!(env.runtime.state.lock().unwrap().more.copy_to.len(), sent);
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_commit_export_history() {
    let env = with_box().await;

    let out = env.run(&["diff", "box"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "C /etc\nA /etc/x\nD /y\n");
    let out = env.run(&["container", "diff", "ghost"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "rdockctl: no such container: ghost\n");

    let out = env
        .run(
            &[
                "commit",
                "-m",
                "tweak",
                "-a",
                "Me <me@example.com>",
                "-c",
                "CMD [\"sh\"]",
                "--change",
                "ENV A=1",
                "--pause=false",
                "box",
                "repo/app:v2",
            ],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{COMMIT_ID}\n"));
    let out = env.run(&["container", "commit", "box"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    {
        let st = env.runtime.state.lock().unwrap();
        let c = &st.more.commits[0];
        assert_eq!(
            (
                c.id.as_str(),
                c.reference.as_str(),
                c.message.as_str(),
                c.author.as_str()
            ),
            ("box", "repo/app:v2", "tweak", "Me <me@example.com>")
        );
        assert_eq!(c.changes, ["CMD [\"sh\"]", "ENV A=1"]);
        assert!(!c.pause);
        let c = &st.more.commits[1];
        assert!(c.pause && c.reference.is_empty() && c.changes.is_empty());
    }
    let out = env.run(&["commit", "box", "Bad:Ref"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr).lines().count(), 1);

    // export: to a file (written whole, or not at all), or to a pipe.
    let file = env.dir.path().join("box.tar");
    let out = env
        .run(&["export", "-o", file.to_str().unwrap(), "box"], None, &[])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let data = fs::read(&file).unwrap();
    assert!(data.starts_with(b"TAR[box]") && data.len() == 8 + 1024);
    let out = env.run(&["container", "export", "box"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, data);
    let ghost = env.dir.path().join("ghost.tar");
    let out = env
        .run(
            &["export", "--output", ghost.to_str().unwrap(), "ghost"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(!ghost.exists());
    let names: Vec<_> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("ghost"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    let missing = env.dir.path().join("nope/x.tar");
    let out = env
        .run(
            &["export", "-o", missing.to_str().unwrap(), "box"],
            None,
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "rdockctl: invalid output path: directory \"{}\" does not exist\n",
            env.dir.path().join("nope").display()
        )
    );

    // history: Docker's table, newest first.
    let out = env.run(&["history", "busybox"], None, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    // Columns: 12 + 3, "3 hours ago" + 3, 45 + 3 (CREATED BY is cut at
    // 45), SIZE at the minimum 10, COMMENT last.
    let row =
        |a: &str, b: &str, c: &str, d: &str, e: &str| format!("{a:<15}{b:<14}{c:<48}{d:<10}{e}");
    assert_eq!(
        lines[0],
        row("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")
    );
    assert_eq!(
        lines[1],
        row(
            "27a71e19c956",
            "3 hours ago",
            "rdockctl commit -m tweak web",
            "2.05kB",
            "tweak"
        )
    );
    assert_eq!(
        lines[2],
        row(
            "<missing>",
            "2 days ago",
            "/bin/sh -c #(nop)  CMD [\"sh\"]",
            "0B",
            ""
        )
    );
    assert_eq!(
        lines[3],
        row(
            "<missing>",
            "2 days ago",
            "/bin/sh -c #(nop) ADD file:9b2f5e7c1a3d4b6e8…",
            "4.26MB",
            ""
        )
    );
    let out = env
        .run(&["image", "history", "-q", "busybox"], None, &[])
        .await;
    assert_eq!(text(&out.stdout), "27a71e19c956\n<missing>\n<missing>\n");
    let out = env
        .run(
            &[
                "history",
                "-H=false",
                "--no-trunc",
                "--format",
                "{{.ID}}|{{.Size}}|{{.CreatedBy}}",
                "busybox",
            ],
            None,
            &[],
        )
        .await;
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().next().unwrap(),
        format!("{}|2048|rdockctl commit -m tweak web", common::BB_ID)
    );
    assert!(stdout.lines().nth(2).unwrap().ends_with("in / "));
    let out = env.run(&["history", "ghost"], None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "rdockctl: no such image: ghost\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_export_leaves_no_file() {
    let env = with_box().await;
    env.runtime.add(MockContainer::new(
        "5105510551055105c3b5e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c",
        "slow",
        &["sleep"],
        60,
        "running",
        "Up 1 minute",
    ));
    let out_dir = env.dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let dest = out_dir.join("slow.tar");
    for (sig, code) in [
        (nix::sys::signal::Signal::SIGINT, 130),
        (nix::sys::signal::Signal::SIGTERM, 143),
    ] {
        let mut cmd = env.command(&["export", "-o", dest.to_str().unwrap(), "slow"]);
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let child = cmd.spawn().unwrap();
        let pid = child.id().unwrap();
        // The temporary file holds the first chunk: the export is under way.
        let tmp = out_dir.join(format!(".slow.tar.rdock-{pid}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while fs::metadata(&tmp).map_or(true, |m| m.len() == 0) {
            assert!(std::time::Instant::now() < deadline, "no {}", tmp.display());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
        let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "");
        let left: Vec<_> = fs::read_dir(&out_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "{sig}: {left:?}");
    }
}
