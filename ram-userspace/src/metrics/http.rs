//! Just enough HTTP/1.x for a scraper: the request head is read up to its
//! blank line, `GET /metrics` (or HEAD) is answered, anything else gets its
//! status code, and every connection closes after one response. No
//! keep-alive, no request bodies, no chunking: a scrape every few seconds
//! needs none of it, and a small hand-written responder keeps an HTTP
//! stack out of a root daemon.

use super::Format;

/// The longest request head read; a scraper's is a few hundred bytes.
pub const MAX_HEAD: usize = 8192;

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// The metrics, in this format; without the body for HEAD.
    Metrics { format: Format, head_only: bool },
    /// 400, 404, 405 or 431 with a short text saying why.
    Refused(Status),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    HeadTooLarge,
    Unavailable,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::HeadTooLarge => "431 Request Header Fields Too Large",
            Status::Unavailable => "503 Service Unavailable",
        }
    }

    /// The body of a refusal.
    pub fn text(self) -> &'static str {
        match self {
            Status::Ok => "",
            Status::BadRequest => "not an HTTP/1.x request\n",
            Status::NotFound => "ramd serves its metrics at /metrics\n",
            Status::MethodNotAllowed => "only GET and HEAD\n",
            Status::HeadTooLarge => "request head too large\n",
            Status::Unavailable => "ramd cannot read its maps; see its log\n",
        }
    }
}

/// The end of the head in `buf` (just past its blank line), once it is there.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Routes a whole request head.
pub fn route(head: &[u8]) -> Route {
    let Ok(head) = std::str::from_utf8(head) else { return Route::Refused(Status::BadRequest) };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::Refused(Status::BadRequest);
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Route::Refused(Status::BadRequest);
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path != "/metrics" {
        return Route::Refused(Status::NotFound);
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::Refused(Status::MethodNotAllowed),
    };
    let accept = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("accept").then_some(value.trim())
    });
    Route::Metrics { format: Format::for_accept(accept), head_only }
}

/// A whole response, closing the connection.
pub fn response(status: Status, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        status.line(),
        body.len()
    );
    if status == Status::MethodNotAllowed {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_is_routed_with_its_format() {
        let prometheus = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9464\r\nUser-Agent: Prometheus/2.53.0\r\n\
                          Accept: application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4\r\n\
                          \r\n";
        assert_eq!(head_end(prometheus.as_bytes()), Some(prometheus.len()));
        assert_eq!(route(prometheus.as_bytes()), Route::Metrics { format: Format::OpenMetrics, head_only: false });
        let curl = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\naccept: */*\r\n\r\n";
        assert_eq!(route(curl), Route::Metrics { format: Format::Prometheus, head_only: false });
        let query = b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n";
        assert_eq!(route(query), Route::Metrics { format: Format::Prometheus, head_only: true });
    }

    #[test]
    fn anything_else_is_refused_with_its_status() {
        assert_eq!(head_end(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::Refused(Status::NotFound));
        assert_eq!(route(b"GET /metricsx HTTP/1.1\r\n\r\n"), Route::Refused(Status::NotFound));
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::Refused(Status::MethodNotAllowed));
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::Refused(Status::BadRequest));
        assert_eq!(route(b"GET /metrics SPDY/3\r\n\r\n"), Route::Refused(Status::BadRequest));
        assert_eq!(route(b"GET  /metrics HTTP/1.1\r\n\r\n"), Route::Refused(Status::BadRequest));
        assert_eq!(route(b"\xff\xfe\r\n\r\n"), Route::Refused(Status::BadRequest));
    }

    #[test]
    fn responses_say_their_length_and_close() {
        let ok = response(Status::Ok, "text/plain; version=0.0.4; charset=utf-8", b"ram_up 1\n", false);
        assert_eq!(
            String::from_utf8(ok).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 9\r\n\
             Connection: close\r\n\r\nram_up 1\n"
        );
        let head = response(Status::Ok, "text/plain", b"ram_up 1\n", true);
        assert!(String::from_utf8(head).unwrap().ends_with("Content-Length: 9\r\nConnection: close\r\n\r\n"));
        let refused = String::from_utf8(response(Status::MethodNotAllowed, "text/plain", b"", false)).unwrap();
        assert!(refused.starts_with("HTTP/1.1 405 Method Not Allowed\r\n") && refused.contains("Allow: GET, HEAD\r\n"));
    }
}
