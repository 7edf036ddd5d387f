"""Chinese and English beyond the chrome: the release page, approvals inbox, environment page, values page and SLA
policy page read in Chinese under zh-hans, and a refusal from the API or a page comes back in the reader's
language (English stays the default)."""
import pytest
from django.test import Client

from releases.choices import ReleaseStatus as S
from tests.conftest import client_for

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_release_approvals_environment_values_and_policy_pages_read_in_chinese(make_release, live_release, rm, ops):
    canary = make_release("v1.1.0", "prod")
    chinese = {
        f"/releases/{canary.pk}/": ["灰度阶梯", "操作", "时间线", "审批", "批准", "确认"],
        "/approvals/": ["审批收件箱", "发起人", "缺少"],
        "/environments/prod/": ["当前状态", "在此运行", "推进前所需审批", "冻结窗口", "保存"],
        "/deploy/agent-infer/staging/values/": ["values 与部署目标", "修订历史", "合并结果"],
        "/sla/policy/prod/": ["SLA 策略", "优先级", "推进前的证据", "回测一项改动", "从未保存：使用默认值。"],
    }
    english = {
        f"/releases/{canary.pk}/": ["Gray ladder", "Actions", "Timeline"],
        "/approvals/": ["Approvals inbox", "started by"],
        "/environments/prod/": ["Running here", "Required approvals before promotion"],
        "/deploy/agent-infer/staging/values/": ["values and deploy target", "Revision history"],
        "/sla/policy/prod/": ["Precedence", "Never saved: the defaults apply."],
    }
    for user in (rm, ops):
        client = logged_in(user)
        for path, words in chinese.items():
            if path.startswith(("/approvals/", f"/releases/{canary.pk}/")) and user is ops:
                continue  # ops give no approvals: the inbox and the approve button are release managers'
            if path.startswith(("/deploy/", "/environments/")) and user is rm:
                continue
            page = client.get(path, **ZH)
            assert page.status_code == 200, path
            html = page.content.decode()
            assert '<html lang="zh-hans">' in html
            for word in words:
                assert word in html, (path, word)
            assert all(word not in html for word in english[path]), path
            english_page = client.get(path, HTTP_ACCEPT_LANGUAGE="en-US").content.decode()
            assert all(word in english_page for word in english[path]), path


@pytest.mark.django_db
def test_an_api_refusal_comes_back_in_the_language_the_client_asks_for(make_release, live_release, rm):
    ready = make_release("v1.1.0", "staging")
    api = client_for(rm)
    english = api.post(f"/api/releases/{ready.pk}/pause/", {}, format="json")
    assert english.status_code == 409
    assert english.json()["detail"] == (f"cannot pause release #{ready.pk}: only a release in gray can be paused; "
                                        f"it is {S.READY}")
    chinese = api.post(f"/api/releases/{ready.pk}/pause/", {}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert chinese.status_code == 409 and chinese.json()["code"] == "transition_not_allowed"  # codes stay
    assert chinese.json()["detail"] == f"无法暂停发布 #{ready.pk}：只有灰度中的发布可以暂停；它的状态是 ready"

    unknown = api.post("/api/releases/", {"service": "nope", "environment": "staging", "tag": "v1.2.0",
                                          "commit": "a" * 40}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert unknown.status_code in (400, 404) and "没有名为「nope」的服务" in unknown.json()["detail"]
    assert "service" in unknown.json()["errors"]  # field names are not translated
    denied = client_for(rm).post("/api/services/", {"name": "x"}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert denied.status_code == 403 and "只有" in denied.json()["detail"] and "ops" in denied.json()["detail"]


@pytest.mark.django_db
def test_a_refused_page_action_says_why_in_chinese(make_release, live_release, rm):
    ready = make_release("v1.1.0", "staging")
    client = logged_in(rm)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    answer = client.post(f"/releases/{ready.pk}/pause/", follow=True)
    page = answer.content.decode()
    assert "暂停被拒绝：无法暂停发布" in page, page[-3000:]


@pytest.mark.django_db
def test_the_refused_action_itself_is_named_in_the_readers_language(make_release, live_release, rm):
    api = client_for(rm)

    def both(path):
        english = api.post(path, {"comment": "looked"}, format="json")
        chinese = api.post(path, {"comment": "looked"}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert english.status_code == chinese.status_code == 409, english.json()
        return english.json()["detail"], chinese.json()["detail"]

    for verb, chinese_verb in (("approve", "批准"), ("reject", "驳回")):  # staging requires no approvals
        english, chinese = both(f"/api/releases/{live_release.pk}/{verb}/")
        assert english == f"staging needs no approvals; nothing to {verb}"
        assert chinese == f"staging 不需要审批；没有可{chinese_verb}的内容"
    english, chinese = both(f"/api/releases/{live_release.pk}/promote/")
    assert english.startswith(f"cannot promote release #{live_release.pk}: it is live")
    assert chinese.startswith(f"无法推进发布 #{live_release.pk}"), chinese
    assert live_release.__class__.objects.get(pk=live_release.pk).status == S.LIVE  # nothing changed
