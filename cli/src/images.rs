//! Image commands: pull, push, import, images, tag, rmi, and the image
//! objects `inspect` shows.

use std::io::{self, Write};

use anyhow::{anyhow, bail, Context as _, Result};
use futures::StreamExt as _;
use rdock_common::client::Conn;
use rdock_proto::image::v1::image_service_client::ImageServiceClient;
use rdock_proto::image::v1::{
    import_chunk, pull_progress, push_progress, GetImageRequest, Image, ImportChunk, ImportHeader,
    ListImagesRequest, PullRequest, PushRequest, RemoveImageRequest, TagImageRequest,
};
use serde::Serialize;
use tokio::io::AsyncReadExt as _;

use crate::args::{ImagesArgs, ImportArgs, PullArgs, PushArgs, RmiArgs, TagArgs};
use crate::conn::{open_input, Target};
use crate::error::{self, Reported};
use crate::format::{
    ago, check_template, created_at, human_size, now, render_rows, rfc3339, short_id,
};
use crate::progress::{Kind, Output, Progress};
use crate::reference::{familiar, normalize, split_tag};

/// Size of the `data` chunks `import` streams.
const IMPORT_CHUNK: usize = 1 << 20;

pub async fn pull(target: &Target, args: &PullArgs) -> Result<()> {
    let reference = args.reference.trim();
    if reference.is_empty() {
        bail!("invalid reference format: empty");
    }
    let mut client = target.image().await?;
    // Docker's "up to date" means the reference already named this image.
    let before = client
        .get_image(GetImageRequest {
            reference: reference.to_string(),
        })
        .await
        .ok()
        .map(|img| img.into_inner().id);
    let image = pull_image(&mut client, reference, Output::Stdout).await?;
    let status = if before.as_deref() == Some(image.id.as_str()) {
        "Image is up to date"
    } else {
        "Downloaded newer image"
    };
    let shown = shown_reference(&image, reference);
    let mut out = io::stdout().lock();
    writeln!(out, "Digest: {}", image.manifest_digest)?;
    writeln!(out, "Status: {status} for {}", familiar(&shown))?;
    writeln!(out, "{shown}")?;
    Ok(())
}

/// The full reference a pull of `reference` is shown under.
fn shown_reference(image: &Image, reference: &str) -> String {
    let full = normalize(reference);
    image
        .references
        .iter()
        .find(|r| **r == full)
        .cloned()
        .unwrap_or(full)
}

/// Pulls `reference`, showing per-layer progress on `output`; returns the
/// image.
pub async fn pull_image(
    client: &mut ImageServiceClient<Conn>,
    reference: &str,
    output: Output,
) -> Result<Image> {
    let mut stream = client
        .pull(PullRequest {
            reference: reference.to_string(),
        })
        .await?
        .into_inner();
    let mut progress = Progress::to(Kind::Pull, output);
    let result: Result<Option<Image>> = async {
        let mut done = None;
        while let Some(msg) = stream.message().await? {
            match msg.event {
                Some(pull_progress::Event::Layer(l)) => progress.layer(&l)?,
                // The Digest/Status lines are printed by the caller.
                Some(pull_progress::Event::Status(s))
                    if !s.is_empty() && !s.starts_with("Digest:") && !s.starts_with("Status:") =>
                {
                    progress.line(&s)?
                }
                Some(pull_progress::Event::Done(img)) => done = Some(img),
                _ => {}
            }
        }
        Ok(done)
    }
    .await;
    progress.finish();
    result?.ok_or_else(|| {
        anyhow!("pull {reference}: the image daemon ended the pull without a result")
    })
}

/// What `run` and `create` do when the image is not there: Docker's
/// "Unable to find image" line, then the pull, all on stderr.
pub async fn ensure_image(client: &mut ImageServiceClient<Conn>, reference: &str) -> Result<()> {
    match client
        .get_image(GetImageRequest {
            reference: reference.to_string(),
        })
        .await
    {
        Ok(_) => return Ok(()),
        Err(status) if status.code() == tonic::Code::NotFound => {}
        Err(status) => return Err(status.into()),
    }
    let out = Output::Stderr;
    out.line(&format!(
        "Unable to find image '{}' locally",
        familiar(&normalize(reference))
    ))?;
    let image = pull_image(client, reference, out).await?;
    let shown = shown_reference(&image, reference);
    out.line(&format!("Digest: {}", image.manifest_digest))?;
    out.line(&format!(
        "Status: Downloaded newer image for {}",
        familiar(&shown)
    ))?;
    Ok(())
}

pub async fn push(target: &Target, args: &PushArgs) -> Result<()> {
    let reference = args.reference.trim();
    if reference.is_empty() {
        bail!("invalid reference format: empty");
    }
    let full = normalize(reference);
    let (repo, tag) = split_tag(&full);
    let tag = tag.unwrap_or("latest").to_string();
    let mut client = target.image().await?;
    let mut stream = client
        .push(PushRequest {
            reference: reference.to_string(),
        })
        .await?
        .into_inner();
    let mut progress = Progress::new(Kind::Push);
    progress.line(&format!("The push refers to repository [{repo}]"))?;
    let result: Result<Option<String>> = async {
        let mut digest = None;
        while let Some(msg) = stream.message().await? {
            match msg.event {
                Some(push_progress::Event::Layer(l)) => progress.layer(&l)?,
                Some(push_progress::Event::Status(s)) if !s.is_empty() => progress.line(&s)?,
                Some(push_progress::Event::Digest(d)) => digest = Some(d),
                _ => {}
            }
        }
        Ok(digest)
    }
    .await;
    progress.finish();
    let digest = result?.ok_or_else(|| {
        anyhow!("push {reference}: the image daemon ended the push without a digest")
    })?;
    writeln!(io::stdout().lock(), "{tag}: digest: {digest}")?;
    Ok(())
}

pub async fn import(target: &Target, args: &ImportArgs) -> Result<()> {
    let source = if args.file == "-" {
        "standard input".to_string()
    } else {
        args.file.clone()
    };
    let reader = open_input(&args.file).await?;
    let header = ImportHeader {
        reference: args.reference.clone().unwrap_or_default(),
        changes: args.changes.clone(),
        message: args.message.clone(),
    };
    let mut client = target.image().await?;

    // A read error must not end the stream cleanly (the daemon would import
    // a truncated tarball): it is reported here and the call is dropped,
    // which resets the stream.
    let (err_tx, err_rx) = tokio::sync::oneshot::channel::<io::Error>();
    let chunks = futures::stream::unfold(
        (Some(header), reader, Some(err_tx)),
        |(header, mut reader, mut err_tx)| async move {
            if let Some(h) = header {
                let chunk = ImportChunk {
                    part: Some(import_chunk::Part::Header(h)),
                };
                return Some((chunk, (None, reader, err_tx)));
            }
            let mut buf = Vec::with_capacity(IMPORT_CHUNK);
            match (&mut reader)
                .take(IMPORT_CHUNK as u64)
                .read_to_end(&mut buf)
                .await
            {
                Ok(0) => None,
                Ok(_) => {
                    let chunk = ImportChunk {
                        part: Some(import_chunk::Part::Data(buf)),
                    };
                    Some((chunk, (None, reader, err_tx)))
                }
                Err(e) => {
                    if let Some(tx) = err_tx.take() {
                        let _ = tx.send(e);
                    }
                    std::future::pending().await
                }
            }
        },
    )
    .boxed();
    let response = tokio::select! {
        res = client.import(chunks) => res?.into_inner(),
        Ok(e) = err_rx => bail!("read {source}: {e}"),
    };
    let image = response
        .image
        .ok_or_else(|| anyhow!("import: the image daemon returned no image"))?;
    writeln!(io::stdout().lock(), "{}", image.id)?;
    Ok(())
}

/// One row of `images`: one per reference, or `<none>` for an untagged image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ImageRow {
    repository: String,
    tag: String,
    id: String,
    created: i64,
    size: u64,
}

/// The JSON object of `images --format json` (keys sorted, as Docker's).
#[derive(Debug, Serialize)]
struct ImageJson<'a> {
    #[serde(rename = "CreatedAt")]
    created_at: String,
    #[serde(rename = "CreatedSince")]
    created_since: String,
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Repository")]
    repository: &'a str,
    #[serde(rename = "Size")]
    size: String,
    #[serde(rename = "Tag")]
    tag: &'a str,
}

fn image_rows(images: &[Image]) -> Vec<ImageRow> {
    let mut rows = Vec::new();
    for img in images {
        let row = |repository: String, tag: String| ImageRow {
            repository,
            tag,
            id: img.id.clone(),
            created: img.created,
            size: img.size,
        };
        if img.references.is_empty() {
            rows.push(row("<none>".into(), "<none>".into()));
        }
        for r in &img.references {
            let (repo, tag) = split_tag(r);
            rows.push(row(familiar(repo), tag.unwrap_or("<none>").to_string()));
        }
    }
    rows.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then_with(|| a.repository.cmp(&b.repository))
            .then_with(|| a.tag.cmp(&b.tag))
            .then_with(|| a.id.cmp(&b.id))
    });
    rows
}

/// Whether a row matches `images REPOSITORY[:TAG]`.
fn row_matches(row: &ImageRow, filter: &str) -> bool {
    let (repo, tag) = split_tag(filter);
    let want = familiar(split_tag(&normalize(repo)).0);
    (row.repository == repo || row.repository == want) && tag.is_none_or(|t| row.tag == t)
}

fn render_images(args: &ImagesArgs, images: &[Image], now: i64) -> Result<String> {
    let mut rows = image_rows(images);
    if let Some(f) = &args.reference {
        rows.retain(|r| row_matches(r, f));
    }
    let id = |row: &ImageRow| {
        if args.no_trunc {
            row.id.clone()
        } else {
            short_id(&row.id)
        }
    };
    if args.quiet {
        let mut out = String::new();
        let mut seen = std::collections::HashSet::new();
        for row in &rows {
            let id = id(row);
            if seen.insert(id.clone()) {
                out.push_str(&id);
                out.push('\n');
            }
        }
        return Ok(out);
    }
    let json_rows: Vec<ImageJson> = rows
        .iter()
        .map(|row| ImageJson {
            created_at: created_at(row.created),
            created_since: ago(row.created, now),
            id: id(row),
            repository: &row.repository,
            size: human_size(row.size),
            tag: &row.tag,
        })
        .collect();
    render_rows(
        args.format.as_deref(),
        &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        &json_rows,
        |r| {
            vec![
                r.repository.to_string(),
                r.tag.to_string(),
                r.id.clone(),
                r.created_since.clone(),
                r.size.clone(),
            ]
        },
    )
}

pub async fn images(target: &Target, args: &ImagesArgs) -> Result<()> {
    // Fail on a bad template before talking to the daemon.
    if !args.quiet {
        check_template(args.format.as_deref())?;
    }
    let mut client = target.image().await?;
    let list = client.list_images(ListImagesRequest {}).await?.into_inner();
    let text = render_images(args, &list.images, now())?;
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

pub async fn tag(target: &Target, args: &TagArgs) -> Result<()> {
    let mut client = target.image().await?;
    client
        .tag_image(TagImageRequest {
            source: args.source.clone(),
            target: args.target.clone(),
        })
        .await?;
    Ok(())
}

/// `Untagged: <name>` with the name in Docker's familiar form, whether or
/// not the daemon's entry already carries the prefix.
fn untagged_line(entry: &str) -> String {
    let name = entry.strip_prefix("Untagged: ").unwrap_or(entry);
    format!("Untagged: {}", familiar(name))
}

/// `Deleted: <id>`.
fn deleted_line(entry: &str) -> String {
    let id = entry.strip_prefix("Deleted: ").unwrap_or(entry);
    format!("Deleted: {id}")
}

pub async fn rmi(target: &Target, args: &RmiArgs) -> Result<()> {
    let mut client = target.image().await?;
    let mut failed = false;
    for image in &args.images {
        match client
            .remove_image(RemoveImageRequest {
                reference: image.clone(),
                force: args.force,
            })
            .await
        {
            Ok(resp) => {
                let resp = resp.into_inner();
                let mut out = io::stdout().lock();
                for u in &resp.untagged {
                    writeln!(out, "{}", untagged_line(u))?;
                }
                for d in &resp.deleted {
                    writeln!(out, "{}", deleted_line(d))?;
                }
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

/// `RootFS` of an inspect object.
#[derive(Debug, Serialize)]
struct RootFs {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// An image as `docker image inspect` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    id: String,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    parent: String,
    comment: String,
    created: String,
    author: String,
    config: serde_json::Value,
    architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    os: String,
    size: u64,
    #[serde(rename = "RootFS")]
    root_fs: RootFs,
}

fn str_field(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

pub fn inspect_object(img: &Image) -> Result<ImageInspect> {
    let config: serde_json::Value = if img.config_json.trim().is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_str(&img.config_json)
            .with_context(|| format!("image {}: invalid image config", img.id))?
    };
    let comment = str_field(&config, "comment")
        .or_else(|| {
            config
                .get("history")
                .and_then(serde_json::Value::as_array)
                .and_then(|h| h.last())
                .and_then(|h| str_field(h, "comment"))
        })
        .unwrap_or_default();
    let created = str_field(&config, "created").unwrap_or_else(|| rfc3339(img.created));
    let image_config = match config.get("config") {
        Some(c @ serde_json::Value::Object(_)) => c.clone(),
        _ => serde_json::Value::Object(Default::default()),
    };
    let layers = config
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(serde_json::Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let pick = |own: &str, key: &str| {
        if own.is_empty() {
            str_field(&config, key).unwrap_or_default()
        } else {
            own.to_string()
        }
    };
    Ok(ImageInspect {
        id: img.id.clone(),
        repo_tags: img
            .references
            .iter()
            .filter(|r| !r.contains('@'))
            .map(|r| familiar(r))
            .collect(),
        repo_digests: img.repo_digests.iter().map(|r| familiar(r)).collect(),
        parent: String::new(),
        comment,
        created,
        author: str_field(&config, "author").unwrap_or_default(),
        config: image_config,
        architecture: pick(&img.architecture, "architecture"),
        variant: str_field(&config, "variant"),
        os: pick(&img.os, "os"),
        size: img.size,
        root_fs: RootFs {
            kind: "layers".into(),
            layers,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::json_pretty;
    use crate::template::GoTemplate;

    fn image(id: &str, refs: &[&str], created: i64, size: u64) -> Image {
        Image {
            id: id.into(),
            references: refs.iter().map(|s| s.to_string()).collect(),
            created,
            size,
            ..Default::default()
        }
    }

    fn args() -> ImagesArgs {
        ImagesArgs {
            quiet: false,
            no_trunc: false,
            format: None,
            reference: None,
        }
    }

    const NOW: i64 = 1_727_386_302;

    fn sample() -> Vec<Image> {
        vec![
            image(
                "sha256:27a71e19c95622dbd4a6e4e3c1e8b9f2a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
                &[
                    "docker.io/library/busybox:latest",
                    "127.0.0.1:5000/test/bb:v1",
                ],
                NOW - 3 * 3600,
                4_261_550,
            ),
            image("sha256:0123456789abcdef0000", &[], 0, 512),
        ]
    }

    #[test]
    fn images_table_like_docker() {
        let text = render_images(&args(), &sample(), NOW).unwrap();
        assert_eq!(
            text,
            "REPOSITORY               TAG       IMAGE ID       CREATED       SIZE\n\
             127.0.0.1:5000/test/bb   v1        27a71e19c956   3 hours ago   4.26MB\n\
             busybox                  latest    27a71e19c956   3 hours ago   4.26MB\n\
             <none>                   <none>    0123456789ab   N/A           512B\n"
        );
    }

    #[test]
    fn images_quiet_json_and_filter() {
        let mut a = args();
        a.quiet = true;
        assert_eq!(
            render_images(&a, &sample(), NOW).unwrap(),
            "27a71e19c956\n0123456789ab\n"
        );
        a.no_trunc = true;
        assert!(render_images(&a, &sample(), NOW).unwrap().starts_with(
            "sha256:27a71e19c95622dbd4a6e4e3c1e8b9f2a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6\n"
        ));

        let mut a = args();
        a.format = Some("json".into());
        let text = render_images(&a, &sample(), NOW).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["Repository"], "127.0.0.1:5000/test/bb");
        assert_eq!(first["Tag"], "v1");
        assert_eq!(first["ID"], "27a71e19c956");
        assert_eq!(first["Size"], "4.26MB");
        assert_eq!(first["CreatedAt"], "2024-09-26 18:31:42 +0000 UTC");
        assert_eq!(text.lines().count(), 3);

        let mut a = args();
        a.format = Some("{{.Repository}}:{{.Tag}}".into());
        a.reference = Some("busybox".into());
        assert_eq!(
            render_images(&a, &sample(), NOW).unwrap(),
            "busybox:latest\n"
        );
        a.reference = Some("docker.io/library/busybox:latest".into());
        assert_eq!(
            render_images(&a, &sample(), NOW).unwrap(),
            "busybox:latest\n"
        );
        a.reference = Some("busybox:other".into());
        assert_eq!(render_images(&a, &sample(), NOW).unwrap(), "");
    }

    #[test]
    fn rmi_lines_like_docker() {
        assert_eq!(
            untagged_line("docker.io/example/bb:v2"),
            "Untagged: example/bb:v2"
        );
        assert_eq!(
            untagged_line("Untagged: docker.io/library/bb:1"),
            "Untagged: bb:1"
        );
        assert_eq!(
            untagged_line("127.0.0.1:5000/t/bb:v1"),
            "Untagged: 127.0.0.1:5000/t/bb:v1"
        );
        assert_eq!(deleted_line("sha256:ab"), "Deleted: sha256:ab");
        assert_eq!(deleted_line("Deleted: sha256:ab"), "Deleted: sha256:ab");
    }

    #[test]
    fn inspect_object_from_config() {
        let mut img = image(
            "sha256:abc",
            &[
                "docker.io/library/busybox:latest",
                "127.0.0.1:5000/test/bb:v1",
            ],
            NOW,
            4_261_550,
        );
        img.repo_digests = vec!["docker.io/library/busybox@sha256:d1".into()];
        img.architecture = "amd64".into();
        img.config_json = r#"{"created":"2024-09-26T21:31:42Z","architecture":"amd64","os":"linux",
            "config":{"Env":["PATH=/bin"],"Cmd":["sh"],"WorkingDir":"/"},
            "rootfs":{"type":"layers","diff_ids":["sha256:l1","sha256:l2"]},
            "history":[{"created_by":"import","comment":"imported"}]}"#
            .into();
        let obj = inspect_object(&img).unwrap();
        let v = serde_json::to_value(&obj).unwrap();
        assert_eq!(v["Id"], "sha256:abc");
        assert_eq!(
            v["RepoTags"],
            serde_json::json!(["busybox:latest", "127.0.0.1:5000/test/bb:v1"])
        );
        assert_eq!(v["RepoDigests"], serde_json::json!(["busybox@sha256:d1"]));
        assert_eq!(v["Created"], "2024-09-26T21:31:42Z");
        assert_eq!(v["Os"], "linux");
        assert_eq!(v["Architecture"], "amd64");
        assert_eq!(v["Comment"], "imported");
        assert_eq!(v["Size"], 4_261_550);
        assert_eq!(v["RootFS"]["Type"], "layers");
        assert_eq!(
            v["RootFS"]["Layers"],
            serde_json::json!(["sha256:l1", "sha256:l2"])
        );

        let t = GoTemplate::parse("{{.Id}} {{.Config.Cmd}} {{json .Config.Env}} {{.Config.User}}")
            .unwrap();
        assert_eq!(
            t.render(&v).unwrap(),
            r#"sha256:abc [sh] ["PATH=/bin"] <no value>"#
        );

        let pretty = json_pretty(&vec![obj]).unwrap();
        assert!(pretty
            .starts_with("[\n    {\n        \"Id\": \"sha256:abc\",\n        \"RepoTags\": ["));

        img.config_json = "not json".into();
        assert!(inspect_object(&img).is_err());
    }
}
