//! Published and exposed ports (`ports`).

use serde::{Deserialize, Serialize};

use super::serde_util::{self, Extensions};

/// One `ports` entry in long form. A host port range stays one entry (`published: "8000-8010"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `ingress` (the default) or `host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// Container port.
    pub target: u16,
    /// Host port or range; a string, as docker compose prints it.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "serde_util::opt_string_or_number"
    )]
    pub published: Option<String>,
    /// `tcp` (the default), `udp` or `sctp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl PortConfig {
    /// The protocol, `tcp` when unset.
    pub fn protocol(&self) -> &str {
        self.protocol.as_deref().unwrap_or("tcp")
    }

    /// The published host port range as `(first, last)`; `None` when not published or malformed.
    pub fn published_range(&self) -> Option<(u16, u16)> {
        let text = self.published.as_deref()?.trim();
        if text.is_empty() {
            return None;
        }
        match text.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                (a <= b).then_some((a, b))
            }
            None => text.parse().ok().map(|p| (p, p)),
        }
    }
}
