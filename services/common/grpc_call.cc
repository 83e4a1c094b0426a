#include "grpc_call.h"

#include "aor.h"
#include "log.h"

namespace dims {

grpc::Status Fail(grpc::CallbackServerContext* context, grpc::StatusCode code,
                  const std::string& message, dims::v1::ErrorDetail detail) {
  context->AddTrailingMetadata("dims-error-bin", detail.SerializeAsString());
  return grpc::Status(code, message);
}

grpc::Status Fail(grpc::CallbackServerContext* context, grpc::StatusCode code,
                  const std::string& message, const std::string& reason, const std::string& field) {
  dims::v1::ErrorDetail detail;
  detail.set_reason(reason);
  detail.set_field(field);
  return Fail(context, code, message, std::move(detail));
}

std::optional<std::string> NormalizedAor(const dims::v1::Aor& aor, const std::string& field,
                                         grpc::CallbackServerContext* context,
                                         grpc::Status* error) {
  auto parsed = ParseAor(aor.uri());
  if (!parsed.aor) {
    *error = Fail(context, grpc::StatusCode::INVALID_ARGUMENT,
                  field + " '" + aor.uri() + "' is not a usable AOR: " + parsed.error,
                  "INVALID_AOR", field + ".uri");
    return std::nullopt;
  }
  return parsed.aor->ToString();
}

std::optional<std::string> AorOrFinish(const dims::v1::Aor& aor, const std::string& field,
                                       grpc::CallbackServerContext* context,
                                       grpc::ServerUnaryReactor* reactor) {
  grpc::Status error;
  auto normalized = NormalizedAor(aor, field, context, &error);
  if (!normalized) reactor->Finish(error);
  return normalized;
}

void RunOnPool(WorkerPool& pool, grpc::CallbackServerContext* context,
               grpc::ServerUnaryReactor* reactor, std::function<grpc::Status()> work) {
  bool queued = pool.Post([context, reactor, work = std::move(work)] {
    grpc::Status status;
    try {
      status = work();
    } catch (const DependencyUnavailable& e) {
      status = Fail(context, grpc::StatusCode::UNAVAILABLE, e.what(), "UNAVAILABLE");
    } catch (const std::exception& e) {
      log::Error("call failed", {{"error", e.what()}});
      status = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
    reactor->Finish(status);
  });
  if (!queued) {
    reactor->Finish(Fail(context, grpc::StatusCode::UNAVAILABLE,
                         "overloaded: too much work queued; retry later", "OVERLOADED"));
  }
}

}  // namespace dims
