//! The OpenAPI 3.1 document, generated: operations and response schemas come from the handlers'
//! `#[utoipa::path]` and the answer types; request bodies, which the handlers parse by hand from
//! the raw request, are described here from the media types [`super::input`] (with
//! `spamlens-request`) and
//! [`super::mail`] accept; the bearer security appears when the server runs with `--token-file`.

use std::sync::Arc;

use utoipa::openapi::content::{Content, ContentBuilder};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::request_body::{RequestBody, RequestBodyBuilder};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Components, OpenApi, Ref, RefOr, Required, Schema};

use spamlens_request::ClassifyJson;

use super::error::ErrorBody;

/// The image media types `POST /v1/classify` takes as a raw body (the decoder's formats; the
/// server reads the format from the bytes, so any `image/*` type is taken).
pub const IMAGE_TYPES: [&str; 8] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/tiff",
    "image/x-icon",
    "image/vnd.microsoft.icon",
];

/// The document's fixed parts: info, tags and the schemas request bodies refer to.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "spamlens",
        description = "Email image-spam classification (spam / ham / ad) with a ResNet-50 backbone and a trained \
            head, and whole-email verdicts with a text filter. Limits are the server's flags; GET /v1/model reports \
            the values in force. Every request-level error is JSON (the Error schema), also 404 for an unknown \
            path and 405 (with Allow) for a method a path does not take."
    ),
    components(schemas(ClassifyJson, ErrorBody)),
    tags(
        (name = "classify", description = "Images."),
        (name = "mail", description = "Whole emails: verdicts and the text filter's feedback."),
        (name = "service", description = "Health, readiness, the model, metrics and this document."),
    )
)]
pub(super) struct ApiDoc;

/// The generated document as served at `/openapi.json` (an axum extension of the router).
#[derive(Debug, Clone)]
pub(super) struct OpenApiDocument(Arc<str>);

impl OpenApiDocument {
    /// Serialises `document`.
    pub(super) fn new(document: &OpenApi) -> serde_json::Result<Self> {
        Ok(OpenApiDocument(Arc::from(document.to_json()?)))
    }

    /// The JSON text.
    pub(super) fn json(&self) -> String {
        self.0.to_string()
    }
}

/// `{type: string, format: binary}`: bytes of the media type the content names.
fn binary(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
        .description(Some(description))
}

fn content(schema: impl Into<RefOr<Schema>>) -> Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

/// `POST /v1/classify`: one raw image, several as multipart parts, or JSON with base64 strings.
fn classify_body() -> RequestBody {
    let mut body = RequestBodyBuilder::new().required(Some(Required::True)).description(Some(
        "One image as the raw body (its format is read from the bytes: JPEG, PNG, GIF, WebP, BMP, TIFF or ICO; \
         application/octet-stream and any image/* type are taken too), several images as multipart/form-data \
         (every part is an image, named by its file name, else its field name), or JSON with base64 images. \
         At most --max-images images and --max-body-mib MiB. Bytes that are not such an image are answered \
         with that image's error (422 when no image could be classified).",
    ));
    for media_type in IMAGE_TYPES {
        body = body.content(media_type, content(binary("An encoded image.")));
    }
    let part = binary("An encoded image (JPEG, PNG, GIF, WebP, BMP, TIFF or ICO).");
    // A part's name goes into its Content-Disposition header: header text, without control
    // characters, quotes or backslashes (a part header carrying them is malformed multipart).
    let name = ObjectBuilder::new().schema_type(Type::String).pattern(Some(r#"^[^\u0000-\u001f\u007f"\\]*$"#));
    let form = ObjectBuilder::new()
        .schema_type(Type::Object)
        .min_properties(Some(1))
        .property_names(Some(name))
        .additional_properties(Some(part))
        .description(Some("Every part is one image; the answer names it by its file name, else its field name."));
    let multipart = ContentBuilder::new().schema(Some(form)).build();
    body = body.content("multipart/form-data", multipart);
    body = body.content("application/json", content(RefOr::Ref(Ref::from_schema_name("ClassifyJson"))));
    body.build()
}

/// `POST /v1/scan` and `POST /v1/feedback`: one raw RFC 5322 message.
fn message_body() -> RequestBody {
    RequestBodyBuilder::new()
        .required(Some(Required::True))
        .description(Some(
            "One raw RFC 5322 message, starting with its header fields (also taken as text/plain, application/mbox \
             with a leading From_ line, application/octet-stream, or without a Content-Type). A body that is not \
             a message is answered 400 not_a_message.",
        ))
        .content("message/rfc822", content(binary("The message as it was received.")))
        .build()
}

/// The operation `method` on `path`, if the document has it.
fn operation<'a>(document: &'a mut OpenApi, path: &str, method: &str) -> Option<&'a mut Operation> {
    let item = document.paths.paths.get_mut(path)?;
    match method {
        "get" => item.get.as_mut(),
        "post" => item.post.as_mut(),
        _ => None,
    }
}

/// Completes the generated `document`: request bodies, and with `auth` the bearer scheme with its
/// 401 answer on each of `protected` (the paths behind the token).
pub(super) fn finish(mut document: OpenApi, protected: &[String], auth: bool) -> OpenApi {
    if let Some(op) = operation(&mut document, "/v1/classify", "post") {
        op.request_body = Some(classify_body());
    }
    for path in ["/v1/scan", "/v1/feedback"] {
        if let Some(op) = operation(&mut document, path, "post") {
            op.request_body = Some(message_body());
        }
    }
    if auth {
        let components = document.components.get_or_insert_with(Components::new);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some("The token of the server's --token-file.".to_owned());
        components.security_schemes.insert("bearer".to_owned(), SecurityScheme::Http(scheme));
        let unauthorized = ResponseBuilder::new()
            .description("The bearer token is missing or wrong (`unauthorized`).")
            .content("application/json", content(RefOr::Ref(Ref::from_schema_name("Error"))))
            .header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some("`Bearer`."))
                    .build(),
            )
            .build();
        for path in protected {
            for method in ["get", "post"] {
                if let Some(op) = operation(&mut document, path, method) {
                    op.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
                    op.responses.responses.insert("401".to_owned(), RefOr::T(unauthorized.clone()));
                }
            }
        }
    }
    document
}

#[cfg(test)]
mod tests {
    use super::super::router::document;

    #[test]
    fn the_document_lists_every_route_with_precise_bodies() {
        let open = document(false);
        let value = serde_json::to_value(&open).unwrap();
        assert_eq!(value["openapi"], "3.1.0");
        let mut paths: Vec<(String, String)> = Vec::new();
        for (path, item) in value["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                paths.push((method.clone(), path.clone()));
            }
        }
        paths.sort();
        let expected = [
            ("get", "/healthz"),
            ("get", "/metrics"),
            ("get", "/openapi.json"),
            ("get", "/readyz"),
            ("get", "/v1/model"),
            ("post", "/v1/classify"),
            ("post", "/v1/feedback"),
            ("post", "/v1/scan"),
        ];
        let expected: Vec<(String, String)> =
            expected.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
        assert_eq!(paths, expected);

        let classify = &value["paths"]["/v1/classify"]["post"]["requestBody"]["content"];
        for media_type in super::IMAGE_TYPES {
            assert_eq!(classify[media_type]["schema"]["format"], "binary", "{media_type}");
        }
        assert!(classify.get("application/octet-stream").is_none(), "raw bodies are images, not any bytes");
        assert_eq!(classify["multipart/form-data"]["schema"]["minProperties"], 1);
        let scan = &value["paths"]["/v1/scan"]["post"]["requestBody"]["content"];
        assert_eq!(scan.as_object().unwrap().keys().collect::<Vec<_>>(), ["message/rfc822"]);
        let responses = value["paths"]["/v1/classify"]["post"]["responses"].as_object().unwrap();
        let statuses: Vec<&str> = responses.keys().map(String::as_str).collect();
        assert_eq!(statuses, ["200", "400", "413", "415", "422", "503"]);
        assert!(value.get("components").and_then(|c| c.get("securitySchemes")).is_none());

        let guarded = serde_json::to_value(document(true)).unwrap();
        for (method, path) in [("post", "/v1/classify"), ("post", "/v1/scan"), ("get", "/metrics")] {
            let op = &guarded["paths"][path][method];
            assert_eq!(op["security"], serde_json::json!([{"bearer": []}]), "{path}");
            assert!(op["responses"]["401"].is_object(), "{path}");
        }
        assert!(guarded["paths"]["/healthz"]["get"].get("security").is_none());
        assert_eq!(guarded["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    }
}
