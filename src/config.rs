//! `flow.toml` (or the file `FLOW_CONFIG` names): planner and notification settings. Flags beat environment
//! variables, which beat this file, which beats the defaults.
//!
//! ```toml
//! [planner]
//! repair_rounds = 2
//! timeout = "45m"      # one model answer at most; default 30m for a local base_url, else 5m
//!
//! [openai]
//! base_url = "http://127.0.0.1:11434/v1"   # Ollama; default https://api.openai.com/v1
//! model = "llama3.1"
//! api_key_env = "OPENAI_API_KEY"            # the variable holding the key
//!
//! [bedrock]
//! region = "us-east-1"
//! model = "anthropic.claude-3-5-sonnet-20240620-v1:0"   # or an inference profile id
//!
//! [notify]
//! webhook_url = "https://hooks.slack.com/services/..."   # or FLOW_WEBHOOK_URL
//!
//! [[approval]]                     # approval policy rules: see domain::policy
//! kinds = ["changeset"]
//! min_approvers = 2
//! not_author = true
//! ```

use serde::Deserialize;

/// Why the configuration cannot be used: the file, or a setting from it, the environment or
/// a flag.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// Not TOML, or not the settings flow knows (the parser's words, which point at the line).
    #[error("config {path}: {message}")]
    Parse { path: String, message: String },
    /// A setting no command can be made of (a model's timeout, a missing model).
    #[error("config {0}")]
    Setting(String),
    #[error("config {0}")]
    Webhook(#[from] crate::webhook::Error),
}

type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub planner: Planner,
    #[serde(default)]
    pub openai: OpenAi,
    #[serde(default)]
    pub bedrock: Bedrock,
    #[serde(default)]
    pub notify: Notify,
    #[serde(default)]
    pub state: State,
    /// Approval policy rules (`[[approval]]`), see [`crate::domain::policy`].
    #[serde(default)]
    pub approval: Vec<crate::domain::policy::Rule>,
}

impl Config {
    pub fn policy(&self) -> crate::domain::policy::Policy {
        crate::domain::policy::Policy { rules: self.approval.clone() }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// A local directory (sled) or `s3://BUCKET/PREFIX`; `--state` and `FLOW_STATE` win.
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Where notices go (Slack-compatible JSON); `FLOW_WEBHOOK_URL` wins. Never shown: the URL
    /// is the credential.
    pub webhook_url: Option<String>,
    /// What to call it wherever people read (default: the URL's scheme and host).
    pub webhook_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Planner {
    pub repair_rounds: Option<u32>,
    /// How long one model answer may take (`"45m"`); `FLOW_LLM_TIMEOUT` and `--llm-timeout` win.
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAi {
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub api_key_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bedrock {
    pub region: Option<String>,
    pub model: Option<String>,
}

pub fn load() -> Result<Config> {
    let (path, explicit) = match std::env::var("FLOW_CONFIG") {
        Ok(p) if !p.is_empty() => (std::path::PathBuf::from(p), true),
        _ => (std::path::PathBuf::from("flow.toml"), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(Config::default()),
        Err(source) => return Err(Error::Read { path: path.display().to_string(), source }),
    };
    toml::from_str(&text)
        .map_err(|e| Error::Parse { path: path.display().to_string(), message: e.to_string().trim_end().to_string() })
}

pub fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// The webhook notices go to, if any: `FLOW_WEBHOOK_URL`, else `[notify] webhook_url`; with the
/// name it is shown as (`FLOW_WEBHOOK_NAME`, else `[notify] webhook_name`).
pub fn webhook() -> Result<Option<(String, Option<String>)>> {
    let conf = load()?;
    let name = env("FLOW_WEBHOOK_NAME").or(conf.notify.webhook_name);
    Ok(env("FLOW_WEBHOOK_URL").or(conf.notify.webhook_url).map(|u| (u, name)))
}
