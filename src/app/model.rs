//! Asking a model: the requirements it proposes for a spec (held to the spec's text), the plan
//! it drafts (validated, repaired, or refused), and which model a command asks, with how long
//! it may take.

use std::path::Path;

use serde_json::Value;

use super::plan::{How, Planner};
use super::Env;
use crate::config::{self, Config};
use crate::domain::plan::Plan;
use crate::domain::spec::Spec;
use crate::domain::{digest, grounding, validate};
use crate::error::{Error, Result};
use crate::planner::{self, llm::Provider};

/// Ask the model which requirements the spec states (from the cache when the same spec was
/// asked of the same model), and hold each proposal to the text: kept ones join the spec's
/// requirements, and `s.llm` tells what became of every one. The exchange is kept in the
/// `audit` runbook's planner log.
pub async fn extract(
    env: &Env,
    model: &Model,
    path: &Path,
    s: &mut Spec,
    audit: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let provider = &model.provider;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let key = planner::extract::cache_key(&text, provider.as_ref());
    let cached = if model.no_cache { None } else { env.open()?.cached_answer(&key)? };
    let read = match cached.as_ref().and_then(Value::as_str) {
        Some(a) => {
            notes.push(format!(
                "planner: {} {} read this spec's requirements before (cache key {}); not asking again (--no-cache to ask)",
                provider.name(),
                provider.model(),
                digest::short(&key)
            ));
            planner::extract::parse_answer(a)
        }
        None => {
            env.progress.show(
                "planner",
                &format!("asking {} {} which requirements the spec states", provider.name(), provider.model()),
            );
            let mut exchanges = Vec::new();
            let now = || env.now();
            let watch = |n: u32| {
                env.progress.show(
                    "planner",
                    &format!("{} {} is listing the requirements: {n} tokens so far", provider.name(), provider.model()),
                )
            };
            let result =
                planner::extract::ask(provider.as_ref(), &text, model.limit, &now, &watch, &mut |e| exchanges.push(e))
                    .await;
            env.progress.done("planner");
            let mut j = env.open()?;
            if let Some(rb) = audit {
                for e in &exchanges {
                    j.append_exchange(rb, &serde_json::to_value(e).unwrap_or(Value::Null))?;
                }
            }
            let answer = result.map_err(|e| Error::Planner(e.0))?;
            if answer.cut_off {
                // Unusable, like an answer that is not JSON: flow's own reading stands.
                Err(planner::llm::Unusable::CutOff(planner::extract::shape().max_tokens))
            } else {
                // Only a readable answer is worth asking for again.
                let parsed = planner::extract::parse_answer(&answer.text);
                if parsed.is_ok() {
                    j.cache_answer(&key, &Value::String(answer.text))?;
                }
                parsed
            }
        }
    };
    let (proposals, malformed) = match read {
        Ok(read) => read,
        Err(why) => (Vec::new(), vec![format!("the model's list of requirements cannot be read: {why}")]),
    };
    grounding::ground(s, &text, provider.name(), provider.model(), &proposals, &malformed);
    if let Some(x) = &s.llm {
        notes.push(format!(
            "planner: {} {} proposed {} requirement{}: {} kept, {} as flow read them, {} rejected, {} read otherwise by flow (flow's reading used); `flow spec {} --extract llm` shows each",
            x.provider,
            x.model,
            x.proposed,
            if x.proposed == 1 { "" } else { "s" },
            x.kept.len(),
            x.agreed.len(),
            x.rejected.len(),
            x.disagreements.len(),
            path.display()
        ));
    }
    Ok(())
}

/// The model a `How` names, made once per command, with how to ask it.
pub struct Model {
    pub provider: Box<dyn Provider>,
    pub no_cache: bool,
    pub repair_rounds: u32,
    /// How long one answer may take.
    pub limit: std::time::Duration,
}

/// The model `how` names, from flags, environment and `flow.toml`.
pub async fn model(how: &How) -> Result<Model> {
    let conf = config::load()?;
    let provider = provider(how, &conf).await?;
    let limit = match how.timeout {
        Some(t) => t,
        None => match config::env("FLOW_LLM_TIMEOUT").or(conf.planner.timeout.clone()) {
            Some(t) => humantime::parse_duration(&t).map_err(|e| {
                Error::Config(crate::config::Error::Setting(format!(
                    "model timeout `{t}` (FLOW_LLM_TIMEOUT or [planner] timeout): {e}"
                )))
            })?,
            None => default_timeout(provider.as_ref()),
        },
    };
    if limit.is_zero() {
        return Err(Error::Config(crate::config::Error::Setting("the model timeout must be more than 0".into())));
    }
    Ok(Model {
        provider,
        no_cache: how.no_cache,
        repair_rounds: how.repair_rounds.or(conf.planner.repair_rounds).unwrap_or(2),
        limit,
    })
}

/// How long one answer may take unless told: 30 minutes for a model on this machine or the
/// local network (a small CPU model writes a few tokens a second), 5 minutes for a hosted one.
pub fn default_timeout(provider: &dyn Provider) -> std::time::Duration {
    let local = provider.settings().get("base_url").and_then(Value::as_str).is_some_and(planner::openai::is_local);
    std::time::Duration::from_secs(if local { 30 * 60 } else { 5 * 60 })
}

async fn provider(how: &How, conf: &Config) -> Result<Box<dyn Provider>> {
    use crate::config::env;
    Ok(match how.planner {
        Planner::Openai => {
            let base = env("OPENAI_BASE_URL")
                .or(conf.openai.base_url.clone())
                .unwrap_or_else(|| "https://api.openai.com/v1".into());
            let model = how
                .model
                .clone()
                .or(env("OPENAI_MODEL"))
                .or(conf.openai.model.clone())
                .unwrap_or_else(|| "gpt-4o-mini".into());
            let key_var = conf.openai.api_key_env.clone().unwrap_or_else(|| "OPENAI_API_KEY".into());
            // Local servers (Ollama, vLLM, llama.cpp) take any key.
            let key = env(&key_var).unwrap_or_else(|| "none".into());
            Box::new(planner::openai::OpenAi::new(&base, &key, &model))
        }
        Planner::Bedrock => {
            let model =
                how.model.clone().or(env("FLOW_BEDROCK_MODEL")).or(conf.bedrock.model.clone()).ok_or_else(|| {
                    Error::Config(crate::config::Error::Setting(
                        "no Bedrock model: give --model, FLOW_BEDROCK_MODEL or [bedrock] model in flow.toml".into(),
                    ))
                })?;
            let region = how.region.clone().or(env("FLOW_BEDROCK_REGION")).or(conf.bedrock.region.clone());
            Box::new(planner::bedrock::Bedrock::new(region.as_deref(), &model).await.map_err(|e| Error::Planner(e.0))?)
        }
        Planner::Builtin => return Err(Error::Usage("the builtin planner asks no model".into())),
    })
}

/// Plan with a model: from the cache when the same question was answered, else ask (and
/// repair); every exchange is kept in the state store, whatever the outcome.
pub(super) async fn llm_plan(
    env: &Env,
    model: &Model,
    name: &str,
    shown: &str,
    path: &Path,
    s: &Spec,
    notes: &mut Vec<String>,
) -> Result<Plan> {
    let provider = &model.provider;
    let key = planner::llm::cache_key(s, provider.as_ref());
    if !model.no_cache {
        let j = env.open()?;
        if let Some(plan) = j.cached_plan(&key)? {
            if validate::validate(&plan).is_empty() && plan.runbook == name {
                notes.push(format!(
                    "planner: {} {} answered this question before (cache key {}); not asking again (--no-cache to ask)",
                    provider.name(),
                    provider.model(),
                    digest::short(&key)
                ));
                return Ok(plan);
            }
        }
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let rounds = model.repair_rounds;
    let mut exchanges = Vec::new();
    let now = || env.now();
    let ask = planner::llm::Ask {
        runbook: name,
        spec_path: shown,
        spec: s,
        spec_text: &text,
        repair_rounds: rounds,
        limit: model.limit,
    };
    env.progress
        .show("planner", &format!("asking {} {} (up to {rounds} repair rounds)", provider.name(), provider.model()));
    let watch = |round: u32, n: u32| {
        let what =
            if round == 0 { "writing the plan".to_string() } else { format!("repairing the plan (round {round})") };
        env.progress.show("planner", &format!("{} {} is {what}: {n} tokens so far", provider.name(), provider.model()));
    };
    let result = planner::llm::plan(provider.as_ref(), ask, &now, &watch, &mut |e| exchanges.push(e)).await;
    env.progress.done("planner");
    let mut j = env.open()?;
    for e in &exchanges {
        let v = serde_json::to_value(e).unwrap_or(Value::Null);
        j.append_exchange(name, &v)?;
    }
    match result {
        Ok(plan) => {
            j.cache_plan(&key, &plan)?;
            Ok(plan)
        }
        Err(planner::llm::Error::Provider(e)) => Err(Error::Planner(e)),
        Err(planner::llm::Error::Invalid { rounds, violations }) => Err(validate::Invalid {
            of: format!(
                "from {} {} after {rounds} repair round{} (nothing was recorded; `flow log --llm -r {name}` shows the exchanges)",
                provider.name(),
                provider.model(),
                if rounds == 1 { "" } else { "s" }
            ),
            violations: violations.into_iter().map(|message| validate::Violation { step: None, message }).collect(),
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_model_gets_minutes_and_a_hosted_one_less() {
        let at = |url: &str| default_timeout(&planner::openai::OpenAi::new(url, "k", "m")).as_secs() / 60;
        assert_eq!(at("http://127.0.0.1:8080/v1"), 30);
        assert_eq!(at("http://localhost:11434/v1"), 30);
        assert_eq!(at("http://10.0.3.7:8000/v1"), 30);
        assert_eq!(at("http://[::1]:8000/v1"), 30);
        assert_eq!(at("https://api.openai.com/v1"), 5);
    }
}
