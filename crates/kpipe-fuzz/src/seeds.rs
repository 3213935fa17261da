//! Seed inputs: bodies shaped as the APIs send them (`shared/apis/*.md`, the simulator's
//! answers), the CSV files, configuration, formulas and state objects the project documents.

pub const LINKEDIN: &[&str] = &[
    r#"{"paging": {"start": 0, "count": 10, "links": []},
  "elements": [{"pivotValues": ["urn:li:sponsoredCampaign:252074216"],
                "dateRange": {"start": {"year":2024,"month":5,"day":1}, "end": {"year":2024,"month":5,"day":1}},
                "impressions": 19464, "clicks": 106, "landingPageClicks": 88, "totalEngagements": 140,
                "likes": 12, "comments": 3, "shares": 1, "follows": 2, "videoViews": 0,
                "costInLocalCurrency": "99.99999999999996", "costInUsd": "107.31",
                "externalWebsiteConversions": 4, "oneClickLeads": 2, "approximateMemberReach": 8120},
               {"pivotValues": ["urn:li:sponsoredCampaign:252074217"],
                "dateRange": {"start": {"year":2024,"month":5,"day":2}, "end": {"year":2024,"month":5,"day":2}},
                "impressions": 0, "clicks": 0, "costInLocalCurrency": "0", "costInUsd": "0",
                "externalWebsiteConversions": null}]}"#,
    r#"{"elements": [{"pivotValues": ["urn:li:sponsoredCreative:1337"], "dateRange": {"start": {"year":2024,"month":2,"day":29}, "end": {"year":2024,"month":2,"day":29}}, "impressions": 5, "clicks": 1, "costInLocalCurrency": "1.5", "costInUsd": "1.62", "videoViews": 3, "videoCompletions": 1}], "paging": {"count": 15000, "start": 0}}"#,
    r#"{"paging": {"count": 10, "start": 0, "links": []},
   "elements": [{"timeRange": {"start": 1711929600000, "end": 1712016000000},
                 "followerGains": {"organicFollowerGain": 3, "paidFollowerGain": 0},
                 "organizationalEntity": "urn:li:organization:2414183"}]}"#,
    r#"{"elements": [{"timeRange": {"start": 1714521600000, "end": 1714608000000},
                 "totalShareStatistics": {"uniqueImpressionsCount": 120, "shareCount": 2, "engagement": 0.031,
                 "clickCount": 9, "likeCount": 4, "impressionCount": 310, "commentCount": 1},
                 "organizationalEntity": "urn:li:organization:2414183"}]}"#,
    r#"{"status": 429, "serviceErrorCode": 101, "code": "TOO_MANY_REQUESTS",
   "message": "Resource level throttle APPLICATION DAY limit for calls to this resource is reached."}"#,
];

pub const FACEBOOK: &[&str] = &[
    r#"{"data": [{"account_id": "798085168510957", "account_currency": "USD", "campaign_id": "23854404676180548",
   "campaign_name": "Spring launch", "date_start": "2024-05-01", "date_stop": "2024-05-01",
   "impressions": "185", "clicks": "9", "spend": "14.35", "cpc": "1.594444", "cpm": "77.567568",
   "ctr": "4.864865", "reach": "171", "frequency": "1.081871", "inline_link_clicks": "8",
   "actions": [{"action_type": "link_click", "value": "9", "7d_click": "9", "1d_view": "0"},
               {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "2", "7d_click": "2"},
               {"action_type": "lead", "value": "1"}],
   "cost_per_action_type": [{"action_type": "link_click", "value": "1.594444"}],
   "action_values": [{"action_type": "offsite_conversion.fb_pixel_purchase", "value": "189.9"}]},
  {"account_id": "798085168510957", "campaign_id": "23854404676180549", "date_start": "2024-05-02",
   "date_stop": "2024-05-02", "impressions": "0", "spend": "0"}],
 "paging": {"cursors": {"before": "MAZDZD", "after": "MjQZD"},
            "next": "https://graph.facebook.com/v20.0/act_798085168510957/insights?after=MjQZD&limit=500"}}"#,
    r#"{"data": [{"account_id": "798085168510957", "adset_id": "1", "adset_name": "A", "ad_id": "2", "ad_name": "B", "date_start": "2024-05-01", "date_stop": "2024-05-01", "impressions": "1", "video_p100_watched_actions": [{"action_type": "video_view", "value": "3"}]}], "paging": {"cursors": {"after": "x"}}}"#,
    r#"{"data": [{"name": "page_impressions", "period": "day",
             "values": [{"value": 0, "end_time": "2024-06-27T07:00:00+0000"},
                        {"value": 12, "end_time": "2024-06-28T07:00:00+0000"}],
             "title": "Daily Total Impressions", "id": "298712583335639/insights/page_impressions/day"},
            {"name": "page_actions_post_reactions_total", "period": "day",
             "values": [{"value": {"like": 3, "love": 1}, "end_time": "2024-06-27T07:00:00+0000"}]},
            {"name": "page_follows", "period": "day", "values": [{"value": 1500, "end_time": "2024-06-28T08:00:00+0000"}]}],
   "paging": {"previous": "https://graph.facebook.com/v20.0/298712583335639/insights?since=1719212400&until=1719385200",
              "next": "https://graph.facebook.com/v20.0/298712583335639/insights?since=1719558000&until=1719730800"}}"#,
    r#"{"error": {"message": "Message describing the error", "type": "OAuthException",
           "code": 190, "error_subcode": 460, "error_user_title": "A title",
           "error_user_msg": "A message", "fbtrace_id": "EJplcsCHuLu"}}"#,
    r#"{"error": {"message": "Please reduce the amount of data you're asking for, then retry your request", "code": 1, "type": "OAuthException", "is_transient": true}}"#,
];

pub const HUBSPOT: &[&str] = &[
    r#"{"total": 2, "results": [
   {"id": "51", "properties": {"createdate": "2024-01-15T09:12:44.201Z", "email": "jane@example.com",
    "hs_object_id": "51", "lastmodifieddate": "2024-03-02T17:25:03.987Z", "lifecyclestage": "lead",
    "hs_lifecyclestage_lead_date": "2024-01-15T09:12:44.201Z", "hs_analytics_source": "PAID_SOCIAL", "phone": null},
    "createdAt": "2024-01-15T09:12:44.201Z", "updatedAt": "2024-03-02T17:25:03.987Z", "archived": false},
   {"id": "52", "properties": {"createdate": "1714546800000", "lifecyclestage": "customer",
    "lastmodifieddate": "2024-05-01T07:00:00Z"}}],
 "paging": {"next": {"after": "52", "link": "https://api.hubapi.com/crm/v3/objects/contacts?after=52"}}}"#,
    r#"{"results": [{"id": "9001", "properties": {"dealname": "Big one", "amount": "1250.50", "dealstage": "closedwon",
   "pipeline": "default", "createdate": "2024-04-02T10:00:00Z", "closedate": "2024-05-01T12:00:00.000Z",
   "deal_currency_code": "EUR", "hs_lastmodifieddate": "2024-05-01T12:00:01Z"}}],
 "paging": {"next": {"after": "200"}}}"#,
    r#"{"results": [{"id": "7", "properties": {"hs_survey_id": "12", "hs_survey_type": "NPS", "hs_value": "9",
   "hs_createdate": "2024-05-03T08:00:00Z", "hs_response_group": "PROMOTER", "hs_lastmodifieddate": "2024-05-03T08:00:00Z"}},
  {"id": "8", "properties": {"hs_survey_id": "13", "hs_survey_type": "CSAT", "hs_value": "2",
   "hs_createdate": "2024-05-03T09:00:00Z"}}]}"#,
    r#"{"results": [{"id": "4e5d", "name": "Newsletter", "formType": "hubspot", "createdAt": "2025-11-03T14:00:00.000Z", "archived": false},
  {"conversionId": "c", "submittedAt": 1714546800000, "values": [{"name": "email", "value": "a@b.c"}]}],
 "paging": {"next": {"after": "Mg=="}}}"#,
    r#"{"results": [{"interval": {"start": "2026-01-06T05:00:00.000Z", "end": "2026-01-07T05:00:00.000Z"},
   "aggregations": {"counters": {"sent": 100, "delivered": 98, "open": 40, "click": 7, "bounce": 2, "unsubscribed": 1}}}]}"#,
    r#"{"results": [{"id": "default", "label": "Sales", "stages": [{"id": "closedwon", "label": "Won", "metadata": {"isClosed": "true", "probability": "1.0"}}, {"id": "appointmentscheduled", "metadata": {"isClosed": "false", "probability": "0.2"}}]}]}"#,
    r#"{"portalId": 62515, "timeZone": "US/Eastern", "companyCurrency": "USD", "utcOffset": "-05:00", "utcOffsetMilliseconds": -18000000, "dataHostingLocation": "na1"}"#,
    r#"{"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT", "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24", "policyName": "DAILY"}"#,
];

pub const GA4: &[&str] = &[
    r#"{"dimensionHeaders": [{"name": "date"}, {"name": "sessionDefaultChannelGroup"}],
  "metricHeaders": [{"name": "sessions", "type": "TYPE_INTEGER"}, {"name": "totalUsers", "type": "TYPE_INTEGER"},
                    {"name": "engagementRate", "type": "TYPE_FLOAT"},
                    {"name": "averageSessionDuration", "type": "TYPE_SECONDS"},
                    {"name": "purchaseRevenue", "type": "TYPE_CURRENCY"}],
  "rows": [{"dimensionValues": [{"value": "20240501"}, {"value": "Organic Search"}],
            "metricValues": [{"value": "1532"}, {"value": "1200"}, {"value": "0.6481723237597912"},
                             {"value": "187.23406720626632"}, {"value": "2450.5"}]},
           {"dimensionValues": [{"value": "20240502"}, {}],
            "metricValues": [{"value": "3"}, {"value": "2"}, {"value": "0"}, {"value": "0"}, {"value": "0"}]}],
  "rowCount": 42,
  "metadata": {"currencyCode": "USD", "timeZone": "America/Los_Angeles", "subjectToThresholding": true},
  "propertyQuota": {"tokensPerDay": {"consumed": 12, "remaining": 199867}, "tokensPerHour": {"consumed": 12, "remaining": 39961},
                    "concurrentRequests": {"remaining": 10}, "tokensPerProjectPerHour": {"consumed": 12, "remaining": 13961}},
  "kind": "analyticsData#runReport"}"#,
    r#"{"reports": [{"dimensionHeaders": [{"name": "date"}], "metricHeaders": [{"name": "totalUsers", "type": "TYPE_INTEGER"}, {"name": "newUsers", "type": "TYPE_INTEGER"}, {"name": "sessions", "type": "TYPE_INTEGER"}],
   "rows": [{"dimensionValues": [{"value": "20240501"}], "metricValues": [{"value": "10"}, {"value": "4"}, {"value": "12"}]}], "rowCount": "1"},
  {"dimensionHeaders": [{"name": "date"}, {"name": "newVsReturning"}], "metricHeaders": [{"name": "activeUsers", "type": "TYPE_INTEGER"}],
   "rows": [{"dimensionValues": [{"value": "20240501"}, {"value": "returning"}], "metricValues": [{"value": "6"}]}]}],
 "kind": "analyticsData#batchRunReports"}"#,
    r#"{"dimensionHeaders": [{"name": "date"}, {"name": "sessionSourceMedium"}], "metricHeaders": [{"name": "sessions", "type": "TYPE_INTEGER"}, {"name": "conversions", "type": "TYPE_FLOAT"}], "rows": [{"dimensionValues": [{"value": "20240501"}, {"value": "google / cpc"}], "metricValues": [{"value": "4"}, {"value": "1.5"}]}], "rowCount": 1, "metadata": {"currencyCode": "EUR"}}"#,
    r#"{"error": {"code": 429, "message": "Exhausted property tokens per hour. These quota tokens will return in under an hour.", "status": "RESOURCE_EXHAUSTED"}}"#,
];

pub const FILES: &[&str] = &[
    "date,platform,account,level,entity,metric,value,currency\n\
     2026-03-01,linkedin,508,campaign,c1,spend,24.457317520310493,EUR\n\
     2026-03-01,linkedin,508,campaign,c1,impressions,1200,\n\
     2026-03-02,linkedin,508,campaign,c1,clicks,3,\n\
     2026-03-03,offline_events,shop,event,fair,linkedin.booth_visits,40,\n",
    "date,rep,invites_sent,invites_accepted,replies,interested\n\
     2026-03-01,alice,20,8,3,1\n2026-03-01,bob,15,5,2,0\n2026-03-02,alice,\"12\",4,1,1\n",
    "date,respondent,score,satisfied\n2026-03-01,r1,9,yes\n2026-03-01,r2,6,no\n2026-03-02,r3,10,\n2026-03-02,r4,,yes\n",
    "\u{feff}date;respondent;score\r\n2026-03-01;r1;7\r\n\"2026-03-02\";\"r,2\";\"8\"\r\n",
];

pub const CONFIG: &[&str] = &[
    r#"[pipeline]
output = "warehouse/marketing"   # relative to this file
lookback_days = 28
start_date = "2025-01-01"

[sources.offline_events]
type = "files"
kind = "metrics"
path = "sheets/events-*.csv"

[sources.social_selling]
type = "files"
kind = "social_selling"
path = "sheets/outreach.csv"
platform = "linkedin"
account_id = "sales_emea"

[sources.nps]
type = "files"
kind = "survey"
path = "${SURVEY_EXPORT_DIR}/nps.csv"
survey = "customer_nps"
"#,
    r#"[pipeline]
output = "s3://marketing-lake/kpipe"

[pipeline.storage]
region = "eu-central-1"
endpoint = "http://127.0.0.1:9000"
allow_http = true

[sources.ads]
type = "linkedin"
account_ids = ["508000001"]
client_id = "${LINKEDIN_CLIENT_ID}"
client_secret = "${LINKEDIN_CLIENT_SECRET}"
refresh_token = "${LINKEDIN_REFRESH_TOKEN}"

[sources.meta]
type = "facebook"
access_token = "${FB_TOKEN}"
ad_account_ids = ["act_123"]
levels = ["campaign", "ad"]
"#,
    r#"[pipeline]
output = "out"
schedule = "0 3 * * *"
timezone = "Europe/Berlin"

[sources.crm]
type = "hubspot"
access_token = "${HUBSPOT_TOKEN}"

[sources.web]
type = "google_analytics"
property_ids = ["123456"]
credentials_file = "sa.json"

[kpis.social_share]
formula = "sessions[channel = 'Organic Social' | 'Paid Social'] / sessions"
stage = "awareness"
scale = 100

[kpis.cpl]
enabled = false

[kpis_settings]
grains = ["day", "week"]
"#,
];

pub const FORMULA: &[&str] = &[
    "clicks / impressions",
    "spend / impressions * 1000",
    "coalesce(engagements, likes + comments + shares + clicks) / impressions",
    "sessions[channel = 'Organic Social' | 'Paid Social'] / sessions",
    "(followers - start(followers)) / start(followers)",
    "-(revenue - spend) / -spend * 100",
    "nps_promoters / (nps_promoters + nps_passives + nps_detractors) - 0.5",
    "linkedin.booth_visits / 2.5e3",
];

pub const STATE: &[&str] = &[
    r#"{"version":2,"source":"fuzz","days":[{"from":"2026-03-01","to":"2026-03-05","status":"final","pulled_on":"2026-03-10","pulled_at":"2026-03-10T02:00:00Z","run_id":"r1"},{"from":"2026-03-06","to":"2026-03-09","status":"provisional","pulled_on":"2026-03-10","pulled_at":"2026-03-10T02:00:00Z","run_id":"r1"}],"accounts":{"508":[{"from":"2026-03-01","to":"2026-03-09","status":"final"}]},"streams":{"ads_insights":[{"from":"2026-03-01","to":"2026-03-09","status":"provisional"}]},"cursors":{"ads_insights":{"508":{"through":"2026-03-09","run_id":"r1","advanced_at":"2026-03-10T02:00:01Z"}}}}"#,
    r#"{"version":2,"source":"fuzz","days":[]}"#,
    r#"{"version":1,"sources":{"fuzz":{"days":{"2026-03-01":{"pulled_at":"2026-03-02T01:00:00Z","pulled_on":"2026-03-02","run_id":"r0","rows":10,"accounts":{"508":10},"streams":{"ads":10},"status":"provisional"}},"cursors":{"ads":{"508":{"through":"2026-03-01","run_id":"r0","advanced_at":"2026-03-02T01:00:01Z"}}}}}}"#,
];
