import pytest

from releases.choices import VersionKind
from releases.conventions import ConventionError, check_branch, check_tag_environment, parse_tag


@pytest.mark.parametrize("tag,kind", [
    ("v3.2.1", VersionKind.RELEASE), ("v3.3.0-rc1", VersionKind.CANDIDATE), ("v3.3.0-gray-A", VersionKind.GRAY),
    ("v3.2.1-r1", VersionKind.ROLLBACK), ("dev-latest", VersionKind.DEV), ("v10.0.12", VersionKind.RELEASE),
])
def test_each_documented_tag_form_is_recognised(tag, kind):
    assert parse_tag(tag).kind == kind


@pytest.mark.parametrize("tag", ["3.2.1", "v3.2", "v3.2.1-beta", "v03.2.1", "latest", "v3.2.1-rc0", "", "v3.2.1 ",
                                 "v3.2.1\n"])
def test_a_tag_that_fits_no_convention_is_refused_with_the_list_of_conventions(tag):
    with pytest.raises(ConventionError) as error:
        parse_tag(tag)
    assert error.value.field == "tag"
    assert "v3.3.0-rc1 (staging candidate)" in error.value.message and "dev-latest" in error.value.message


def test_release_candidates_never_reach_prod_and_dev_latest_stays_in_dev_and_test():
    with pytest.raises(ConventionError, match="not prod"):
        check_tag_environment(parse_tag("v3.3.0-rc1"), "prod")
    with pytest.raises(ConventionError, match="not staging"):
        check_tag_environment(parse_tag("dev-latest"), "staging")
    check_tag_environment(parse_tag("v3.3.0-rc1"), "staging")
    check_tag_environment(parse_tag("v3.3.0-gray-A"), "prod")


@pytest.mark.parametrize("branch,env,ok", [
    ("main", "prod", True), ("main", "staging", False), ("develop", "dev", True), ("develop", "test", True),
    ("develop", "prod", False), ("release/v3.3.0", "staging", True), ("release/v3.3.0", "prod", False),
    ("hotfix/fix-crash", "prod", True), ("feature/new-tool", "dev", False), ("release/next", "staging", False),
    ("bugfix/x", "dev", False),
])
def test_branches_release_only_to_their_environments(branch, env, ok):
    if ok:
        check_branch(branch, env)
    else:
        with pytest.raises(ConventionError) as error:
            check_branch(branch, env)
        assert error.value.field == "branch"
