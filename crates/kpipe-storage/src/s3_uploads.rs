//! S3's ListMultipartUploads, which `object_store` does not offer: a process killed between
//! starting a multipart upload and journaling it leaves an upload only a listing finds. The
//! request is signed with `object_store`'s own SigV4 authorizer and credentials.
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListMultipartUploads.html>

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer, AwsCredentialProvider};
use object_store::client::{HttpRequest, HttpRequestBody};

/// Lists the multipart uploads in progress of one bucket.
#[derive(Debug)]
pub(crate) struct S3Uploads {
    credentials: AwsCredentialProvider,
    /// `<endpoint>/<bucket>` (path style) or the virtual-hosted bucket endpoint.
    bucket_url: String,
    region: String,
    client: reqwest::Client,
}

/// One upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenUpload {
    pub key: String,
    pub upload_id: String,
}

impl S3Uploads {
    /// For `bucket`, reached as `builder` (before its URL is applied) says.
    pub(crate) fn new(builder: &AmazonS3Builder, store: &AmazonS3, bucket: &str) -> Option<S3Uploads> {
        let value = |key| builder.get_config_value(&key).filter(|v| !v.is_empty());
        let region = value(AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".to_owned());
        let virtual_hosted = value(AmazonS3ConfigKey::VirtualHostedStyleRequest).is_some_and(|v| v == "true");
        let endpoint = value(AmazonS3ConfigKey::Endpoint);
        let bucket_url = match (endpoint, virtual_hosted) {
            (Some(endpoint), true) => endpoint,
            (Some(endpoint), false) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            (None, true) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
            (None, false) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
        };
        let client = reqwest::Client::builder().build().ok()?;
        Some(S3Uploads { credentials: store.credentials().clone(), bucket_url, region, client })
    }

    /// The uploads in progress whose keys start with `prefix`.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<OpenUpload>, String> {
        let mut out = Vec::new();
        let mut marker: Option<(String, String)> = None;
        loop {
            let mut url = url::Url::parse(&self.bucket_url).map_err(|e| format!("bad bucket URL: {e}"))?;
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("uploads", "").append_pair("prefix", prefix);
                if let Some((key, id)) = &marker {
                    query.append_pair("key-marker", key).append_pair("upload-id-marker", id);
                }
            }
            let mut request: HttpRequest = http::Request::builder()
                .method("GET")
                .uri(url.as_str())
                .body(HttpRequestBody::empty())
                .map_err(|e| e.to_string())?;
            let credential = self.credentials.get_credential().await.map_err(|e| e.to_string())?;
            AwsAuthorizer::new(&credential, "s3", &self.region).authorize(&mut request, None);
            let response = self
                .client
                .get(url.as_str())
                .headers(request.headers().clone())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response.text().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("ListMultipartUploads answered {status}: {}", first_line(&body)));
            }
            out.extend(uploads(&body));
            if tag(&body, "IsTruncated").is_some_and(|t| t == "true") {
                let key = tag(&body, "NextKeyMarker").unwrap_or_default();
                let id = tag(&body, "NextUploadIdMarker").unwrap_or_default();
                if key.is_empty() && id.is_empty() {
                    break;
                }
                marker = Some((key, id));
            } else {
                break;
            }
        }
        Ok(out)
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// The text of the first `<name>...</name>` of `xml`, unescaped.
fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(unescape(&xml[start..end]))
}

fn uploads(xml: &str) -> Vec<OpenUpload> {
    xml.split("<Upload>")
        .skip(1)
        .filter_map(|part| {
            let part = part.split("</Upload>").next()?;
            Some(OpenUpload { key: tag(part, "Key")?, upload_id: tag(part, "UploadId")? })
        })
        .collect()
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_answer() {
        // The shape of the example in the ListMultipartUploads reference.
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>bucket</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>my-movie.m2ts</NextKeyMarker><NextUploadIdMarker>YW55IGlkZWEgd2h5</NextUploadIdMarker>
  <MaxUploads>3</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>my-divisor</Key><UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw</UploadId></Upload>
  <Upload><Key>a&amp;b</Key><UploadId>VXBsb2FkIElE</UploadId></Upload>
</ListMultipartUploadsResult>"#;
        let found = uploads(xml);
        assert_eq!(found.len(), 2);
        assert_eq!(found[1], OpenUpload { key: "a&b".into(), upload_id: "VXBsb2FkIElE".into() });
        assert_eq!(tag(xml, "IsTruncated").as_deref(), Some("true"));
        assert_eq!(tag(xml, "NextKeyMarker").as_deref(), Some("my-movie.m2ts"));
    }
}
