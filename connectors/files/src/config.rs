//! `[sources.<name>]` with `type = "files"`.

use serde::Deserialize;

/// What the matched CSV files hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// Long form: `date,platform,account,level,entity,metric,value,currency`.
    Metrics,
    /// Social-selling activity: `date,rep,invites_sent,invites_accepted,replies,interested`.
    SocialSelling,
    /// Survey answers: `date,respondent,score` (0-10) and/or `satisfied` (yes/no).
    Survey,
}

impl FileKind {
    /// Every kind.
    pub const ALL: [FileKind; 3] = [FileKind::Metrics, FileKind::SocialSelling, FileKind::Survey];

    /// The name used in configuration and as the stream name.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Metrics => "metrics",
            FileKind::SocialSelling => "social_selling",
            FileKind::Survey => "survey",
        }
    }
}

/// Configuration of a files source.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// What the files hold.
    pub kind: FileKind,
    /// A glob (`data/social/*.csv`), relative to the configuration file.
    pub path: String,
    /// `social_selling` and `survey`: the `platform` column of the rows (default `files`).
    pub platform: Option<String>,
    /// `social_selling` and `survey`: the `account_id` of the rows (default: the source name).
    pub account_id: Option<String>,
    /// `survey`: the survey's id, the rows' `entity_id` (default: the source name).
    pub survey: Option<String>,
    /// Field separator, one ASCII character (default `,`).
    pub delimiter: Option<char>,
}
