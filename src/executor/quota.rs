//! `quota`: an AWS service quota against what the plan needs.
//!
//! - preview: GetServiceQuota (the applied value), falling back to GetAWSDefaultServiceQuota;
//!   enough -> the step succeeds with the figures as evidence, no gate; short -> the artifact to
//!   approve is the increase request (service, quota, current, desired);
//! - submit: adopt an open request for the same quota whose desired value covers the need
//!   (ListRequestedServiceQuotaChangeHistoryByQuota), else file RequestServiceQuotaIncrease; the
//!   lookup comes first, so a crash between filing and recording never files a second request
//!   (reconcile is the same lookup);
//! - poll: GetRequestedServiceQuotaChange with backoff (1 min doubling to 6 h) across days;
//!   APPROVED succeeds, DENIED / NOT_APPROVED / CASE_CLOSED / INVALID fail with AWS's status.

use async_trait::async_trait;
use aws_sdk_servicequotas::types::{RequestStatus, RequestedServiceQuotaChange};
use aws_sdk_servicequotas::Client;
use serde_json::{json, Map, Value};

use super::{obj, typed, Ctx, Executor, Outcome, Preview};
use crate::aws;
use crate::domain::catalogue::QuotaParams;
use crate::domain::requirement::fmt_num;

pub struct Quota;

/// The quota as AWS states it now.
struct Current {
    region: String,
    service: String,
    code: String,
    name: String,
    value: f64,
    /// `applied` or `default`.
    source: &'static str,
    required: f64,
}

impl Current {
    fn evidence(&self) -> Map<String, Value> {
        obj(json!({
            "region": self.region, "service_code": self.service, "quota_code": self.code,
            "quota_name": self.name, "applied_value": self.value, "value_source": self.source,
            "required_value": self.required,
        }))
    }
}

async fn client(ctx: &Ctx, p: &QuotaParams) -> Result<(Client, String), String> {
    let conf = aws::config(p.region.as_deref(), &ctx.context).await?;
    let region = conf.region().map(|r| r.to_string()).unwrap_or_default();
    Ok((Client::new(&conf), region))
}

async fn current(ctx: &Ctx, params: &Map<String, Value>) -> Result<(Client, QuotaParams, Current), String> {
    let p: QuotaParams = typed(params)?;
    let required = *p.required.get()?;
    let (c, region) = client(ctx, &p).await?;
    let code = match &p.quota_code {
        Some(code) => code.clone(),
        None => by_name(&c, &p.service_code, p.quota_name.as_deref().unwrap_or_default()).await?,
    };
    let applied = c.get_service_quota().service_code(&p.service_code).quota_code(&code).send().await;
    let (quota, source) = match applied {
        Ok(out) => (out.quota, "applied"),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_resource_exception()) => {
            let d = c
                .get_aws_default_service_quota()
                .service_code(&p.service_code)
                .quota_code(&code)
                .send()
                .await
                .map_err(|e| format!("GetAWSDefaultServiceQuota {}/{code}: {}", p.service_code, aws::describe(&e)))?;
            (d.quota, "default")
        }
        Err(e) => return Err(format!("GetServiceQuota {}/{code}: {}", p.service_code, aws::describe(&e))),
    };
    let quota = quota.ok_or_else(|| format!("AWS returned no quota for {}/{code}", p.service_code))?;
    let cur = Current {
        region,
        service: p.service_code.clone(),
        name: quota.quota_name().map(str::to_string).or(p.quota_name.clone()).unwrap_or_default(),
        value: quota.value().unwrap_or(0.0),
        code,
        source,
        required,
    };
    Ok((c, p, cur))
}

async fn by_name(c: &Client, service: &str, name: &str) -> Result<String, String> {
    let mut pages = c.list_service_quotas().service_code(service).into_paginator().items().send();
    while let Some(q) = pages.next().await {
        let q = q.map_err(|e| format!("ListServiceQuotas {service}: {}", aws::describe(&e)))?;
        if q.quota_name() == Some(name) {
            return q.quota_code().map(str::to_string).ok_or_else(|| format!("quota `{name}` has no code"));
        }
    }
    Err(format!("no quota named `{name}` in service `{service}`"))
}

fn is_open(r: &RequestedServiceQuotaChange) -> bool {
    matches!(r.status(), Some(RequestStatus::Pending) | Some(RequestStatus::CaseOpened))
}

/// Next poll after `polls` polls: 1 min, doubling, at most 6 h.
fn backoff_ms(polls: u64) -> u64 {
    (60_000u64 << polls.min(9)).min(6 * 3600 * 1000)
}

fn waiting(ctx: &Ctx, r: &RequestedServiceQuotaChange, polls: u64, how: &str, cur: &Current) -> Outcome {
    let id = r.id().unwrap_or_default();
    Outcome::Wait {
        next_poll_at: ctx.clock.now_ms() + backoff_ms(polls),
        note: format!(
            "{how} request {id} for {}/{} ({} -> {}): {}",
            cur.service,
            cur.code,
            fmt_num(cur.value),
            fmt_num(r.desired_value().unwrap_or(cur.required)),
            r.status().map(|s| s.as_str()).unwrap_or("PENDING")
        ),
        handle: json!({"request_id": id, "polls": polls, "case_id": r.case_id(), "desired_value": r.desired_value()}),
    }
}

impl Quota {
    /// Adopt an open request that covers the need, else file one.
    async fn file_or_adopt(&self, ctx: &Ctx, params: &Map<String, Value>) -> Outcome {
        let (c, _p, cur) = match current(ctx, params).await {
            Ok(x) => x,
            Err(e) => return Outcome::Fail(e),
        };
        if cur.value >= cur.required {
            return Outcome::Done { outputs: outputs(&cur, None), evidence: cur.evidence() };
        }
        let history = c
            .list_requested_service_quota_change_history_by_quota()
            .service_code(&cur.service)
            .quota_code(&cur.code)
            .send()
            .await;
        let history = match history {
            Ok(h) => h.requested_quotas.unwrap_or_default(),
            Err(e) => {
                return Outcome::Fail(format!("ListRequestedServiceQuotaChangeHistoryByQuota: {}", aws::describe(&e)))
            }
        };
        if let Some(r) = history.iter().find(|r| is_open(r) && r.desired_value().unwrap_or(0.0) >= cur.required) {
            return waiting(ctx, r, 0, "adopted open", &cur);
        }
        let filed = c
            .request_service_quota_increase()
            .service_code(&cur.service)
            .quota_code(&cur.code)
            .desired_value(cur.required)
            .send()
            .await;
        match filed {
            Ok(out) => match out.requested_quota {
                Some(r) => waiting(ctx, &r, 0, "filed", &cur),
                None => Outcome::Fail("RequestServiceQuotaIncrease returned no request".into()),
            },
            Err(e) => Outcome::Fail(format!(
                "RequestServiceQuotaIncrease {}/{} to {}: {}",
                cur.service,
                cur.code,
                fmt_num(cur.required),
                aws::describe(&e)
            )),
        }
    }
}

fn outputs(cur: &Current, request: Option<&str>) -> Map<String, Value> {
    obj(json!({"applied_value": cur.value, "required_value": cur.required, "request_id": request}))
}

#[async_trait]
impl Executor for Quota {
    async fn preview(&self, ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview, String> {
        let (_, _, cur) = current(ctx, params).await?;
        if cur.value >= cur.required {
            return Ok(Preview::Nothing(Outcome::Done { outputs: outputs(&cur, None), evidence: cur.evidence() }));
        }
        Ok(Preview::Approve(format!(
            "request a service quota increase in {}:\n  service: {}\n  quota:   {} {}\n  current: {} ({})\n  desired: {}\n",
            cur.region,
            cur.service,
            cur.code,
            cur.name,
            fmt_num(cur.value),
            cur.source,
            fmt_num(cur.required)
        )))
    }

    async fn submit(&self, ctx: &Ctx, params: &Map<String, Value>, _token: &str) -> Outcome {
        self.file_or_adopt(ctx, params).await
    }

    async fn poll(&self, ctx: &Ctx, params: &Map<String, Value>, handle: &Value) -> Outcome {
        let (c, _p, cur) = match current(ctx, params).await {
            Ok(x) => x,
            Err(e) => return Outcome::Fail(e),
        };
        let id = handle.get("request_id").and_then(Value::as_str).unwrap_or_default().to_string();
        let polls = handle.get("polls").and_then(Value::as_u64).unwrap_or(0) + 1;
        let r = match c.get_requested_service_quota_change().request_id(&id).send().await {
            Ok(out) => match out.requested_quota {
                Some(r) => r,
                None => return Outcome::Fail(format!("GetRequestedServiceQuotaChange {id}: no request returned")),
            },
            Err(e) => return Outcome::Fail(format!("GetRequestedServiceQuotaChange {id}: {}", aws::describe(&e))),
        };
        let status = r.status().map(|s| s.as_str().to_string()).unwrap_or_default();
        match r.status() {
            Some(RequestStatus::Pending) | Some(RequestStatus::CaseOpened) | None => {
                waiting(ctx, &r, polls, "open", &cur)
            }
            Some(RequestStatus::Approved) => {
                let granted = r.desired_value().unwrap_or(cur.required).max(cur.value);
                let mut evidence = cur.evidence();
                evidence.insert("applied_value".into(), json!(granted));
                evidence.insert("request_id".into(), json!(id));
                evidence.insert("request_status".into(), json!(status));
                evidence.insert("case_id".into(), json!(r.case_id()));
                let mut out = outputs(&cur, Some(&id));
                out.insert("applied_value".into(), json!(granted));
                Outcome::Done { outputs: out, evidence }
            }
            _ => Outcome::Fail(format!(
                "AWS answered {status} to quota increase request {id} for {}/{} ({} -> {}){}",
                cur.service,
                cur.code,
                fmt_num(cur.value),
                fmt_num(r.desired_value().unwrap_or(cur.required)),
                r.case_id().map(|c| format!(", support case {c}")).unwrap_or_default()
            )),
        }
    }

    async fn reconcile(&self, ctx: &Ctx, params: &Map<String, Value>, _token: &str) -> Option<Outcome> {
        // The lookup before filing is the reconciliation: a request filed before the crash is adopted.
        Some(self.file_or_adopt(ctx, params).await)
    }
}
