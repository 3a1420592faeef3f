//! A distributed run's place: where the coordinator writes each worker's job and the workers
//! write their progress and figures. A directory for workers on this machine, an S3 prefix
//! (`s3://BUCKET/PREFIX`) for workers anywhere else; no server of flow's own in between.

use std::path::PathBuf;

use aws_sdk_s3::Client;

use crate::aws::{Aws, S3};

/// Why a place cannot be opened, written or read; the caller says what that means for the run.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("`{0}`: expected s3://BUCKET/PREFIX")]
    NotS3Url(String),
    /// No AWS configuration for an S3 place (no region, no credentials).
    #[error("`{at}`: {source}")]
    NoAws { at: String, source: crate::aws::Error },
    #[error(transparent)]
    Aws(#[from] crate::aws::Error),
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: String, source: std::io::Error },
    /// An S3 object's body broke off while it was read.
    #[error("reading {at}: {why}")]
    Body { at: String, why: String },
}

/// Where one run's objects live.
#[derive(Clone)]
pub enum Place {
    Dir(PathBuf),
    S3 { aws: Box<Aws>, client: Client, bucket: String, prefix: String },
}

impl Place {
    /// The place `at` names: `s3://BUCKET/PREFIX` or a directory (made if missing).
    pub async fn open(at: &str) -> Result<Place, PlaceError> {
        if at.starts_with("s3://") {
            let (bucket, prefix) = crate::aws::parse_s3_url(at).ok_or_else(|| PlaceError::NotS3Url(at.into()))?;
            let aws = crate::aws::config(None, &Default::default())
                .await
                .map_err(|source| PlaceError::NoAws { at: at.into(), source })?;
            let conf = aws_sdk_s3::config::Builder::from(&aws.conf).force_path_style(true).build();
            return Ok(Place::S3 { client: Client::from_conf(conf), aws: Box::new(aws), bucket, prefix });
        }
        let dir = PathBuf::from(at);
        std::fs::create_dir_all(&dir).map_err(|source| PlaceError::Io {
            what: "creating",
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Place::Dir(dir))
    }

    /// The place a worker's job reference (`.../worker-0.job.json`) lies in, and the job's name.
    pub async fn of_job(job: &str) -> Result<(Place, String), PlaceError> {
        let (base, name) = job.rsplit_once('/').unwrap_or((".", job));
        let base = if base.is_empty() { "/" } else { base };
        Ok((Place::open(base).await?, name.to_string()))
    }

    /// How a worker finds the object `name`: a path or an `s3://` URL.
    pub fn at(&self, name: &str) -> String {
        match self {
            Place::Dir(d) => d.join(name).display().to_string(),
            Place::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{}", key(prefix, name)),
        }
    }

    /// Write `name` whole or not at all (a directory's file is written beside and renamed).
    pub async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), PlaceError> {
        match self {
            Place::Dir(d) => {
                let (path, tmp) = (d.join(name), d.join(format!("{name}.tmp")));
                std::fs::write(&tmp, &bytes)
                    .and_then(|_| std::fs::rename(&tmp, &path))
                    .map_err(|source| PlaceError::Io { what: "writing", path: path.display().to_string(), source })
            }
            Place::S3 { aws, client, bucket, prefix } => client
                .put_object()
                .bucket(bucket)
                .key(key(prefix, name))
                .body(bytes.into())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws.error(S3, format!("writing {}", self.at(name)), &e).into()),
        }
    }

    /// Read `name`; `None` when it is not there (yet).
    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, PlaceError> {
        match self {
            Place::Dir(d) => match std::fs::read(d.join(name)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => {
                    Err(PlaceError::Io { what: "reading", path: d.join(name).display().to_string(), source })
                }
            },
            Place::S3 { aws, client, bucket, prefix } => {
                match client.get_object().bucket(bucket).key(key(prefix, name)).send().await {
                    Ok(o) => o
                        .body
                        .collect()
                        .await
                        .map(|b| Some(b.into_bytes().to_vec()))
                        .map_err(|e| PlaceError::Body { at: self.at(name), why: e.to_string() }),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                    Err(e) => Err(aws.error(S3, format!("reading {}", self.at(name)), &e).into()),
                }
            }
        }
    }

    /// Remove a directory place (a temporary one, when the run is over).
    pub fn remove(&self) {
        if let Place::Dir(d) = self {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    /// The region an S3 place's client uses (remote workers are told it).
    pub fn region(&self) -> Option<String> {
        match self {
            Place::S3 { aws, .. } => Some(aws.region.clone()),
            Place::Dir(_) => None,
        }
    }
}

fn key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}
