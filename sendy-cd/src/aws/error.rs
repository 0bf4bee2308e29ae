//! The one place SDK errors become crate errors.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::Error;

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

const TRANSIENT: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServiceError",
    "InternalServiceException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ServerException",
    "IDPCommunicationError",
];

const ACCESS: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
    "UnauthorizedOperation",
    "AuthFailure",
    "ClientException:AccessDenied",
];

const NOT_FOUND: &[&str] = &[
    "ResourceNotFoundException",
    "NoSuchHostedZone",
    "NoSuchChange",
    "ServiceNotFoundException",
    "ServiceNotActiveException",
    "ClusterNotFoundException",
    "RepositoryNotFoundException",
    "ImageNotFoundException",
    "ChangeSetNotFound",
    "ChangeSetNotFoundException",
    "StackNotFoundException",
    "PipelineNotFoundException",
    "PipelineExecutionNotFoundException",
    "NotFoundException",
];

const CONFLICT: &[&str] = &[
    "ConflictException",
    "ResourceInUseException",
    "OperationInProgressException",
    "InvalidChangeSetStatus",
    "ConcurrentModification",
    "TokenAlreadyExistsException",
];

/// Maps an SDK error of `operation` (such as `"ecs:UpdateService"`) to a crate error, keeping the AWS
/// error code and request id in the message.
pub fn from_sdk<E>(operation: &str, err: SdkError<E, Response>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_types::request_id::RequestId;
    let status = err.raw_response().map(|r| r.status().as_u16());
    let request_id = err.request_id().map(|id| format!(" (request id {id})")).unwrap_or_default();
    let error = match &err {
        SdkError::ConstructionFailure(_) => {
            Error::InvalidConfig(format!("{operation}: could not build the request: {}", DisplayErrorContext(&err)))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            Error::Transient(format!("{operation}: {}", DisplayErrorContext(&err)).into())
        }
        SdkError::ResponseError(_) => {
            let message = format!("{operation}: unreadable response (HTTP {status:?}){request_id}");
            if status.is_none_or(|s| s >= 500) {
                Error::Transient(message.into())
            } else {
                Error::Backend(message.into())
            }
        }
        _ => {
            let code = err.code().unwrap_or("Unknown");
            let text = err.message().unwrap_or("no message");
            classify(operation, code, text, status, &request_id)
        }
    };
    error.map_detail(|d| d.with_cause(err))
}

/// Decides the variant of a service error from its code and HTTP status; the error keeps the code
/// ([`Error::code`]).
///
/// Two answers carry no code of their own and are recognised by their text, as AWS documents no
/// other way: CloudFormation's `ValidationError` "Stack with id … does not exist", and ECS's
/// `ClientException` "Unable to describe task definition".
pub fn classify(operation: &str, code: &str, text: &str, status: Option<u16>, request_id: &str) -> Error {
    classify_variant(operation, code, text, status, request_id).map_detail(|d| d.with_code(code))
}

fn classify_variant(operation: &str, code: &str, text: &str, status: Option<u16>, request_id: &str) -> Error {
    let message = format!("{operation}: {code}: {text}{request_id}");
    let is = |list: &[&str]| list.contains(&code);
    if is(THROTTLING) || status == Some(429) || text.contains("Rate exceeded") {
        Error::Throttled(message.into())
    } else if is(TRANSIENT) || status.is_some_and(|s| s >= 500) {
        Error::Transient(message.into())
    } else if is(ACCESS) || status == Some(403) {
        Error::AccessDenied(message.into())
    } else if is(NOT_FOUND)
        || status == Some(404)
        || (code == "ValidationError" && text.contains("does not exist"))
        // ECS answers a task definition that does not exist with a generic client error.
        || (code == "ClientException" && text.contains("Unable to describe task definition"))
    {
        Error::NotFound { kind: "AWS resource", id: message.into() }
    } else if is(CONFLICT) {
        Error::Conflict(message.into())
    } else {
        Error::Backend(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_actionable_variants() {
        let c = |code, text, status| classify("svc:Op", code, text, status, " (request id r-1)");
        assert!(matches!(c("ThrottlingException", "slow down", Some(400)), Error::Throttled(_)));
        assert!(matches!(c("Throttling", "Rate exceeded", Some(400)), Error::Throttled(_)));
        assert!(matches!(c("PriorRequestNotComplete", "x", Some(400)), Error::Throttled(_)));
        assert!(matches!(c("Whatever", "x", Some(429)), Error::Throttled(_)));
        assert!(matches!(c("InternalFailure", "x", Some(500)), Error::Transient(_)));
        assert!(matches!(c("Whatever", "x", Some(503)), Error::Transient(_)));
        assert!(matches!(c("AccessDeniedException", "no", Some(400)), Error::AccessDenied(_)));
        assert!(matches!(c("ValidationError", "Stack with id x does not exist", Some(400)), Error::NotFound { .. }));
        assert!(matches!(c("ClusterNotFoundException", "x", Some(400)), Error::NotFound { .. }));
        assert!(matches!(
            c("ClientException", "Unable to describe task definition.", Some(400)),
            Error::NotFound { .. }
        ));
        assert!(matches!(c("ClientException", "Container.image should not be null", Some(400)), Error::Backend(_)));
        assert!(matches!(c("InvalidChangeSetStatus", "x", Some(400)), Error::Conflict(_)));
        assert_eq!(c("ThrottlingException", "slow down", Some(400)).code(), Some("ThrottlingException"));
        assert_eq!(c("Whatever", "x", Some(503)).code(), Some("Whatever"));
        let e = c("ValidationError", "Template format error", Some(400));
        assert_eq!(e.code(), Some("ValidationError"));
        assert!(matches!(e, Error::Backend(_)));
        assert!(!e.is_retryable());
        assert_eq!(e.to_string(), "svc:Op: ValidationError: Template format error (request id r-1)");
    }
}
