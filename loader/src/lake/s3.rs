//! A minimal S3 client for the lake: PUT, GET and ListObjectsV2 on one
//! bucket, path-style addressing (what MinIO and other S3-compatible servers
//! accept everywhere), AWS Signature Version 4.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};

/// Where the lake lives in an S3-compatible store.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/`; may be empty.
    pub prefix: String,
    /// `http://host:port` of the server.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Location")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl S3Location {
    /// Parses `s3://bucket[/prefix]`; the rest comes from the caller.
    pub fn parse_url(url: &str) -> Result<(String, String), String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("lake.url `{url}` must look like s3://bucket/prefix"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(format!(
                "lake.url `{url}`: `{bucket}` is not an S3 bucket name (3-63 of a-z, 0-9, -, .)"
            ));
        }
        Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
    }
}

#[derive(Debug, Clone)]
pub struct S3Store {
    location: S3Location,
    /// `host[:port]` as sent in the `Host` header (and signed).
    host: String,
    http: reqwest::Client,
}

impl S3Store {
    pub fn new(location: S3Location) -> anyhow::Result<Self> {
        let endpoint = reqwest::Url::parse(&location.endpoint)
            .with_context(|| format!("lake endpoint `{}`", location.endpoint))?;
        anyhow::ensure!(
            endpoint.scheme() == "http",
            "lake endpoint `{}`: only http:// is supported (this build has no TLS stack)",
            location.endpoint
        );
        let host = match (endpoint.host_str(), endpoint.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => anyhow::bail!("lake endpoint `{}` has no host", location.endpoint),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            location,
            host,
            http,
        })
    }

    pub fn describe(&self) -> String {
        let l = &self.location;
        format!("s3://{}/{} at {}", l.bucket, l.prefix, l.endpoint)
    }

    fn full_key(&self, key: &str) -> String {
        if self.location.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.location.prefix)
        }
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let path = format!("/{}/{}", self.location.bucket, self.full_key(key));
        let response = self.send(reqwest::Method::PUT, &path, &[], bytes).await?;
        expect_success(response).await.map(|_| ())
    }

    pub async fn get(&self, key: &str) -> anyhow::Result<Vec<u8>> {
        let path = format!("/{}/{}", self.location.bucket, self.full_key(key));
        let response = self
            .send(reqwest::Method::GET, &path, &[], Vec::new())
            .await?;
        Ok(expect_success(response).await?.to_vec())
    }

    /// All keys under `prefix` (relative to the lake's prefix).
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = self.list_page(prefix, token.as_deref(), 1000).await?;
            keys.extend(page.keys);
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(keys),
            }
        }
    }

    pub(crate) async fn list_page(
        &self,
        prefix: &str,
        token: Option<&str>,
        max_keys: u32,
    ) -> anyhow::Result<ListPage> {
        let full_prefix = self.full_key(prefix);
        let mut query = vec![
            ("list-type".to_owned(), "2".to_owned()),
            ("max-keys".to_owned(), max_keys.to_string()),
            ("prefix".to_owned(), full_prefix),
        ];
        if let Some(token) = token {
            query.push(("continuation-token".to_owned(), token.to_owned()));
        }
        let path = format!("/{}", self.location.bucket);
        let response = self
            .send(reqwest::Method::GET, &path, &query, Vec::new())
            .await?;
        let body = expect_success(response).await?;
        let xml = String::from_utf8_lossy(&body);
        let strip = if self.location.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.location.prefix)
        };
        let keys = xml_values(&xml, "Key")
            .into_iter()
            .filter_map(|k| k.strip_prefix(strip.as_str()).map(str::to_owned))
            .collect();
        let truncated = xml_values(&xml, "IsTruncated").first().map(String::as_str) == Some("true");
        let next = xml_values(&xml, "NextContinuationToken").into_iter().next();
        Ok(ListPage {
            keys,
            next: if truncated { next } else { None },
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(String, String)],
        body: Vec<u8>,
    ) -> anyhow::Result<reqwest::Response> {
        let now = chrono::Utc::now();
        let signed = sign(
            &self.location,
            &SignInput {
                method: method.as_str(),
                host: &self.host,
                path,
                query,
                payload_sha256: &hex::encode(Sha256::digest(&body)),
                amz_date: &now.format("%Y%m%dT%H%M%SZ").to_string(),
            },
        );
        let mut url = format!(
            "{}{}",
            self.location.endpoint.trim_end_matches('/'),
            uri_encode(path, false)
        );
        if !signed.canonical_query.is_empty() {
            url.push('?');
            url.push_str(&signed.canonical_query);
        }
        self.http
            .request(method, url)
            .header("x-amz-date", signed.amz_date)
            .header("x-amz-content-sha256", signed.payload_sha256)
            .header("authorization", signed.authorization)
            .body(body)
            .send()
            .await
            .with_context(|| format!("{} unreachable", self.location.endpoint))
    }
}

pub(crate) struct ListPage {
    pub keys: Vec<String>,
    pub next: Option<String>,
}

async fn expect_success(response: reqwest::Response) -> anyhow::Result<bytes::Bytes> {
    let status = response.status();
    let body = response.bytes().await?;
    if status.is_success() {
        return Ok(body);
    }
    let text = String::from_utf8_lossy(&body);
    let code = xml_values(&text, "Code").into_iter().next();
    let message = xml_values(&text, "Message").into_iter().next();
    anyhow::bail!(
        "S3 answered {status}: {} {}",
        code.unwrap_or_default(),
        message.unwrap_or_else(|| text.chars().take(200).collect())
    )
}

/// The text of every `<tag>…</tag>` in `xml`, unescaped. S3's answers are
/// flat enough that this is all the XML the lake needs.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(
            after[..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    out
}

struct SignInput<'a> {
    method: &'a str,
    host: &'a str,
    /// The unencoded path, `/bucket/key`.
    path: &'a str,
    query: &'a [(String, String)],
    payload_sha256: &'a str,
    amz_date: &'a str,
}

struct Signed {
    amz_date: String,
    payload_sha256: String,
    canonical_query: String,
    authorization: String,
}

/// AWS Signature Version 4 over `host`, `x-amz-content-sha256` and `x-amz-date`.
fn sign(location: &S3Location, input: &SignInput<'_>) -> Signed {
    let mut pairs: Vec<(String, String)> = input
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    pairs.sort();
    let canonical_query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let signed_headers = "host;x-amz-content-sha256;x-amz-date";
    let canonical_request = format!(
        "{}\n{}\n{canonical_query}\nhost:{}\nx-amz-content-sha256:{}\nx-amz-date:{}\n\n{signed_headers}\n{}",
        input.method,
        uri_encode(input.path, false),
        input.host,
        input.payload_sha256,
        input.amz_date,
        input.payload_sha256,
    );
    let date = &input.amz_date[..8];
    let scope = format!("{date}/{}/s3/aws4_request", location.region);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        input.amz_date,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac_sha256(
        format!("AWS4{}", location.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [location.region.as_str(), "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    Signed {
        amz_date: input.amz_date.to_owned(),
        payload_sha256: input.payload_sha256.to_owned(),
        canonical_query,
        authorization: format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            location.access_key_id
        ),
    }
}

/// HMAC (RFC 2104) with SHA-256.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0_u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// S3's URI encoding: everything but `A-Z a-z 0-9 - . _ ~` is percent-encoded,
/// and `/` too unless it separates path segments.
fn uri_encode(text: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'.' | b'_' | b'~')
            || (byte == b'/' && !encode_slash)
        {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_aws_documentation_example() {
        // "GET Bucket (List Objects)" of the SigV4 examples in the S3 API
        // reference: virtual-hosted bucket, so the path is `/`.
        let location = S3Location {
            bucket: "examplebucket".into(),
            prefix: String::new(),
            endpoint: "http://examplebucket.s3.amazonaws.com".into(),
            region: "us-east-1".into(),
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        };
        let signed = sign(
            &location,
            &SignInput {
                method: "GET",
                host: "examplebucket.s3.amazonaws.com",
                path: "/",
                query: &[
                    ("max-keys".into(), "2".into()),
                    ("prefix".into(), "J".into()),
                ],
                payload_sha256: &hex::encode(Sha256::digest(b"")),
                amz_date: "20130524T000000Z",
            },
        );
        assert_eq!(signed.canonical_query, "max-keys=2&prefix=J");
        assert!(
            signed.authorization.ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{}",
            signed.authorization
        );
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn urls_and_list_answers_are_parsed() {
        assert_eq!(
            S3Location::parse_url("s3://lake-bucket/sluice/prod/").unwrap(),
            ("lake-bucket".into(), "sluice/prod".into())
        );
        assert!(S3Location::parse_url("s3://Bad_Bucket").is_err());
        assert!(S3Location::parse_url("/var/lake").is_err());
        let xml = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a&amp;b</Key></Contents>\
                   <Contents><Key>c</Key></Contents><NextContinuationToken>t1</NextContinuationToken></ListBucketResult>";
        assert_eq!(xml_values(xml, "Key"), ["a&b", "c"]);
        assert_eq!(xml_values(xml, "NextContinuationToken"), ["t1"]);
        assert_eq!(uri_encode("a b/c=d", true), "a%20b%2Fc%3Dd");
    }
}
