#include "lookup_job.hpp"

namespace pkit::actors::detail {

std::shared_ptr<lookup_job> lookup_job::look_up(const std::shared_ptr<lookup_job>& current, std::uint64_t launch,
                                                const std::string& user, const std::string& group,
                                                report_fn report) {
  if (current && current->adopt(launch, user, group)) return current;
  auto job = std::make_shared<lookup_job>(launch, user, group);
  launcher::instance(launcher_lane::name_service).post([job, report = std::move(report)] { job->run(report); });
  return job;
}

bool lookup_job::adopt(std::uint64_t launch, const std::string& user, const std::string& group) noexcept {
  if (done_.load() || user != user_ || group != group_) return false;
  launch_.store(launch);
  cancelled_.store(false);
  return !done_.load();  // finished meanwhile: it may have read the old launch, or none
}

void lookup_job::run(const report_fn& report) noexcept {
  identity who;
  const bool looked_up = !cancelled_.load();
  if (looked_up) who = identity::lookup(user_, group_);
  done_.store(true);
  if (cancelled_.load()) return;  // nobody waits for it (an adoption after done_ posts anew)
  if (!looked_up) who = identity::lookup(user_, group_);  // adopted while skipped
  const std::uint64_t launch = launch_.load();
  launcher::report_until_made([&] { report(launch, who); });
}

}  // namespace pkit::actors::detail
