//! JUnit XML for CI: one testsuite per report, one testcase per check. critical is a
//! `<failure>`, unknown an `<error>` (the check could not decide), skipped `<skipped>`;
//! ok and warning pass, a warning's message kept in `<system-out>`.

use crate::model::Report;
use crate::model::Status;
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

pub fn render(report: &Report) -> String {
    let mut suite = TestSuite::new(format!("opsbook {}", report.title));
    suite.set_time(report.duration);
    for result in &report.results {
        let mut status = match result.status {
            Status::Ok | Status::Warning => TestCaseStatus::success(),
            Status::Critical => TestCaseStatus::non_success(NonSuccessKind::Failure),
            Status::Unknown => TestCaseStatus::non_success(NonSuccessKind::Error),
            Status::Skipped => TestCaseStatus::skipped(),
        };
        if !matches!(result.status, Status::Ok | Status::Warning) {
            status.set_message(result.message.as_str());
            status.set_type(result.status.as_str());
        }
        let mut case = TestCase::new(result.name.as_str(), status);
        case.set_classname(format!("opsbook.{}.{}", report.title, result.kind));
        case.set_time(result.duration);
        if result.status == Status::Warning {
            case.set_system_out(format!("warning: {}", result.message));
        }
        suite.add_test_case(case);
    }
    let mut junit = quick_junit::Report::new(format!("opsbook {}", report.title));
    junit.set_time(report.duration);
    junit.add_test_suite(suite);
    junit
        .to_string()
        .unwrap_or_else(|e| format!("<!-- opsbook could not render JUnit XML: {e} -->\n"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn testsuite_testcase_and_outcomes() {
        let mut report = crate::model::sample();
        report.results[1].status = crate::model::Status::Critical;
        let xml = super::render(&report);
        assert!(xml.contains("<testsuite name=\"opsbook health\" tests=\"2\" skipped=\"0\" errors=\"0\" failures=\"1\""), "{xml}");
        assert!(
            xml.contains("<testcase name=\"memory\" classname=\"opsbook.health.memory\""),
            "{xml}"
        );
        assert!(
            xml.contains("<system-out>warning: memory 80% used (&gt; warn 75%)</system-out>"),
            "{xml}"
        );
        assert!(
            xml.contains("<failure message=\"/data 10% used\" type=\"critical\"/>"),
            "{xml}"
        );
    }
}
