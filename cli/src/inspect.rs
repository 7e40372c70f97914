//! `inspect`, `container inspect`, `image inspect`: one JSON array of every
//! object found (containers' JSON as the runtime daemon sends it, images
//! as Docker shows them), 4-space indented, or one `-f` template line per
//! object. A name that is nothing is one error line, and exit 1.

use std::io::{self, Write as _};

use anyhow::{Context as _, Result};
use rdock_common::client::Conn;
use rdock_proto::image::v1::image_service_client::ImageServiceClient;
use rdock_proto::image::v1::GetImageRequest;
use rdock_proto::runtime::v1::runtime_service_client::RuntimeServiceClient;
use rdock_proto::runtime::v1::InspectContainerRequest;

use crate::conn::Target;
use crate::error::{self, Reported};
use crate::format::json_reindent;
use crate::images::inspect_object;
use crate::template::GoTemplate;

/// Which objects a name may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Any,
    Container,
    Image,
}

impl Kind {
    pub fn from_type(t: Option<&str>) -> Kind {
        match t {
            Some("container") => Kind::Container,
            Some("image") => Kind::Image,
            _ => Kind::Any,
        }
    }

    fn missing(self, name: &str) -> String {
        match self {
            Kind::Any => format!("no such object: {name}"),
            Kind::Container => format!("no such container: {name}"),
            Kind::Image => format!("no such image: {name}"),
        }
    }
}

/// One found object: its JSON text (key order kept) and its value (for
/// templates).
struct Found {
    text: String,
    value: serde_json::Value,
}

/// Clients made on first use, so `image inspect` never needs the runtime
/// daemon and a container found never needs the image daemon.
struct Clients<'a> {
    target: &'a Target,
    runtime: Option<RuntimeServiceClient<Conn>>,
    image: Option<ImageServiceClient<Conn>>,
}

impl Clients<'_> {
    async fn runtime(&mut self) -> Result<&mut RuntimeServiceClient<Conn>> {
        if self.runtime.is_none() {
            self.runtime = Some(self.target.runtime().await?);
        }
        self.runtime
            .as_mut()
            .context("runtime daemon client missing")
    }

    async fn image(&mut self) -> Result<&mut ImageServiceClient<Conn>> {
        if self.image.is_none() {
            self.image = Some(self.target.image().await?);
        }
        self.image.as_mut().context("image daemon client missing")
    }
}

/// Ok(None): not a container.
async fn find_container(clients: &mut Clients<'_>, name: &str) -> Result<Option<Found>> {
    let rt = clients.runtime().await?;
    match rt
        .inspect_container(InspectContainerRequest {
            id: name.to_string(),
        })
        .await
    {
        Ok(info) => {
            let text = info.into_inner().json;
            let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
                format!("container {name}: invalid inspect JSON from the runtime daemon")
            })?;
            Ok(Some(Found { text, value }))
        }
        Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
        Err(s) => Err(s.into()),
    }
}

/// Ok(None): not an image.
async fn find_image(clients: &mut Clients<'_>, name: &str) -> Result<Option<Found>> {
    let client = clients.image().await?;
    match client
        .get_image(GetImageRequest {
            reference: name.to_string(),
        })
        .await
    {
        Ok(img) => {
            let obj = inspect_object(&img.into_inner())?;
            let value = serde_json::to_value(&obj)?;
            let text = serde_json::to_string(&obj)?;
            Ok(Some(Found { text, value }))
        }
        Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
        Err(s) => Err(s.into()),
    }
}

/// Looks `name` up as `kind` allows: container first, then image. When it
/// is neither, the error of a daemon that could not answer beats "no such".
async fn find(clients: &mut Clients<'_>, name: &str, kind: Kind) -> Result<Option<Found>> {
    let mut container_err = None;
    if kind != Kind::Image {
        match find_container(clients, name).await {
            Ok(Some(found)) => return Ok(Some(found)),
            Ok(None) => {}
            Err(e) if kind == Kind::Container => return Err(e),
            Err(e) => container_err = Some(e),
        }
    }
    if kind != Kind::Container {
        match find_image(clients, name).await {
            Ok(Some(found)) => return Ok(Some(found)),
            Ok(None) => {}
            Err(e) => return Err(container_err.unwrap_or(e)),
        }
    }
    match container_err {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// The JSON array of the found objects, each as its own text re-indented.
fn render_array(found: &[Found]) -> String {
    let texts: Vec<&str> = found.iter().map(|f| f.text.as_str()).collect();
    json_reindent(&format!("[{}]", texts.join(",")))
}

pub async fn inspect(
    target: &Target,
    names: &[String],
    format: Option<&str>,
    kind: Kind,
) -> Result<()> {
    let tmpl = format.map(GoTemplate::parse).transpose()?;
    let mut clients = Clients {
        target,
        runtime: None,
        image: None,
    };
    let mut failed = false;
    let mut found = Vec::new();
    for name in names {
        match find(&mut clients, name, kind).await {
            Ok(Some(f)) => found.push(f),
            Ok(None) => {
                failed = true;
                error::print_line(&kind.missing(name));
            }
            Err(e) => {
                failed = true;
                error::print(&e);
            }
        }
    }
    let mut out = io::stdout().lock();
    match &tmpl {
        Some(t) => {
            for f in &found {
                writeln!(out, "{}", t.render(&f.value)?)?;
            }
        }
        None => writeln!(out, "{}", render_array(&found))?,
    }
    out.flush()?;
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_keeps_each_objects_order() {
        let found: Vec<Found> = [
            r#"{"Id":"c1","State":{"Status":"running","Pid":7}}"#,
            r#"{"Id":"sha256:i","RepoTags":["a:1"]}"#,
        ]
        .iter()
        .map(|t| Found {
            text: t.to_string(),
            value: serde_json::from_str(t).unwrap(),
        })
        .collect();
        assert_eq!(
            render_array(&found),
            "[\n    {\n        \"Id\": \"c1\",\n        \"State\": {\n            \"Status\": \"running\",\n            \"Pid\": 7\n        }\n    },\n    {\n        \"Id\": \"sha256:i\",\n        \"RepoTags\": [\n            \"a:1\"\n        ]\n    }\n]"
        );
        assert_eq!(render_array(&[]), "[]");
        assert_eq!(
            Kind::from_type(Some("image")).missing("x"),
            "no such image: x"
        );
        assert_eq!(Kind::from_type(None).missing("x"), "no such object: x");
    }
}
