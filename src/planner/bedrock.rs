//! The Amazon Bedrock provider: the Converse API with a forced tool (`submit_plan`) whose input
//! schema is the plan schema. Model id or inference profile, and region, come from flag, env or
//! config; credentials from aws-config's standard chain; `AWS_ENDPOINT_URL` is honoured. Bedrock's
//! error kinds are explained in terms of what the user can do.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_bedrockruntime::error::SdkError;
use aws_sdk_bedrockruntime::operation::converse::ConverseError;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ConverseOutput, InferenceConfiguration, Message, SpecificToolChoice, StopReason,
    SystemContentBlock, Tool, ToolChoice, ToolConfiguration, ToolInputSchema, ToolSpecification,
};
use aws_sdk_bedrockruntime::Client;
use aws_smithy_types::{Document, Number};
use serde_json::{json, Value};

use super::llm::{Answer, Provider, ProviderError, Role, Shape, Turn, Watch, TEMPERATURE};
use crate::aws;

pub struct Bedrock {
    client: Client,
    aws: aws::Aws,
    model: String,
    region: String,
}

impl Bedrock {
    pub async fn new(region: Option<&str>, model: &str) -> Result<Bedrock, ProviderError> {
        let aws = aws::config(region, &Default::default()).await.map_err(|e| ProviderError(e.to_string()))?;
        let region = aws.region.clone();
        Ok(Bedrock { client: Client::new(&aws.conf), aws, model: model.into(), region })
    }
}

pub fn to_document(v: &Value) -> Document {
    match v {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Document::Number(Number::PosInt(u)),
            (_, Some(i), _) => Document::Number(Number::NegInt(i)),
            (_, _, f) => Document::Number(Number::Float(f.unwrap_or(0.0))),
        },
        Value::String(s) => Document::String(s.clone()),
        Value::Array(a) => Document::Array(a.iter().map(to_document).collect()),
        Value::Object(m) => {
            Document::Object(m.iter().map(|(k, v)| (k.clone(), to_document(v))).collect::<HashMap<_, _>>())
        }
    }
}

pub fn to_json(d: &Document) -> Value {
    match d {
        Document::Null => Value::Null,
        Document::Bool(b) => json!(b),
        Document::Number(Number::PosInt(u)) => json!(u),
        Document::Number(Number::NegInt(i)) => json!(i),
        Document::Number(Number::Float(f)) => json!(f),
        Document::String(s) => json!(s),
        Document::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Document::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

fn explain(
    aws: &aws::Aws,
    e: &SdkError<ConverseError, aws_smithy_runtime_api::http::Response>,
    model: &str,
    region: &str,
) -> String {
    let aws_words = aws.error(aws::BEDROCK_RUNTIME, format!("Converse {model}"), e);
    let Some(se) = e.as_service_error() else {
        return format!("Bedrock in {region}: {aws_words}");
    };
    let hint = if se.is_access_denied_exception() {
        format!("access denied: the credentials lack bedrock:InvokeModel on {model}, or the model is not enabled for this account in {region} (Bedrock console, Model access)")
    } else if se.is_model_not_ready_exception() {
        format!("model {model} is not ready yet (it is still being deployed); try again in a few minutes")
    } else if se.is_throttling_exception() {
        "throttled: the account's Bedrock quota for this model is exhausted for now; wait, or raise the quota"
            .to_string()
    } else if se.is_validation_exception() {
        format!("the request was refused as invalid for {model}: check that the id (or inference profile) exists in {region} and supports tool use")
    } else if se.is_resource_not_found_exception() {
        format!("no model {model} in {region}: use a model id or an inference profile id available there")
    } else if se.is_service_unavailable_exception()
        || se.is_internal_server_exception()
        || se.is_model_timeout_exception()
    {
        "Bedrock could not answer this time; try again".to_string()
    } else {
        "Bedrock refused the request".to_string()
    };
    format!("{hint} ({aws_words})")
}

#[async_trait]
impl Provider for Bedrock {
    fn name(&self) -> &'static str {
        "bedrock"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn settings(&self) -> Value {
        json!({"temperature": TEMPERATURE, "region": self.region})
    }

    async fn complete(
        &self,
        system: &str,
        turns: &[Turn],
        shape: &Shape,
        _watch: Watch<'_>,
    ) -> Result<Answer, ProviderError> {
        let mut messages = Vec::new();
        for t in turns {
            let role = match t.role {
                Role::User => ConversationRole::User,
                Role::Assistant => ConversationRole::Assistant,
            };
            let m = Message::builder()
                .role(role)
                .content(ContentBlock::Text(t.text.clone()))
                .build()
                .map_err(|e| ProviderError(e.to_string()))?;
            messages.push(m);
        }
        let spec = ToolSpecification::builder()
            .name(shape.tool)
            .description(shape.description)
            .input_schema(ToolInputSchema::Json(to_document(&shape.schema)))
            .build()
            .map_err(|e| ProviderError(e.to_string()))?;
        let tools = ToolConfiguration::builder()
            .tools(Tool::ToolSpec(spec))
            .tool_choice(ToolChoice::Tool(
                SpecificToolChoice::builder().name(shape.tool).build().map_err(|e| ProviderError(e.to_string()))?,
            ))
            .build()
            .map_err(|e| ProviderError(e.to_string()))?;
        let out = self
            .client
            .converse()
            .model_id(&self.model)
            .system(SystemContentBlock::Text(system.into()))
            .set_messages(Some(messages))
            .tool_config(tools)
            .inference_config(
                InferenceConfiguration::builder()
                    .temperature(TEMPERATURE)
                    .max_tokens(i32::try_from(shape.max_tokens).unwrap_or(i32::MAX))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                ProviderError(format!(
                    "Bedrock model {}: {}",
                    self.model,
                    explain(&self.aws, &e, &self.model, &self.region)
                ))
            })?;
        let (tokens_in, tokens_out) = match out.usage() {
            Some(u) => (u32::try_from(u.input_tokens()).ok(), u32::try_from(u.output_tokens()).ok()),
            None => (None, None),
        };
        let cut_off = out.stop_reason() == &StopReason::MaxTokens;
        let answer = |text: String| Answer { text, tokens_in, tokens_out, cut_off };
        let Some(ConverseOutput::Message(m)) = out.output else {
            return Err(ProviderError("Bedrock answered without a message".into()));
        };
        let mut text = None;
        for c in m.content {
            match c {
                ContentBlock::ToolUse(t) => return Ok(answer(to_json(t.input()).to_string())),
                ContentBlock::Text(t) => text = Some(t),
                _ => {}
            }
        }
        text.map(answer).ok_or_else(|| ProviderError("Bedrock's answer had neither a tool call nor text".into()))
    }
}
