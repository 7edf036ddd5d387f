"""A person's preferences: the language of the pages and the time zone times are shown in."""
from zoneinfo import available_timezones

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from frontend.middleware import TIMEZONE_SESSION_KEY, valid_time_zone
from frontend.models import Preference

ZONES = sorted(available_timezones() - {"localtime", "Factory"})


class PreferenceForm(forms.Form):
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
    time_zone = forms.ChoiceField(label=_("Time zone"), required=False,
                                  choices=[("", _("the browser's"))] + [(zone, zone) for zone in ZONES])

    def clean_time_zone(self):
        zone = self.cleaned_data["time_zone"]
        if zone and valid_time_zone(zone) is None:
            raise forms.ValidationError(_("unknown time zone"))
        return zone


@login_required
def preferences(request):
    stored = Preference.objects.filter(user=request.user).first()
    if request.method == "POST":
        form = PreferenceForm(request.POST)
        if form.is_valid():
            Preference.objects.update_or_create(user=request.user,
                                                defaults={"time_zone": form.cleaned_data["time_zone"]})
            request.session[TIMEZONE_SESSION_KEY] = form.cleaned_data["time_zone"]
            language = form.cleaned_data["language"]
            translation.activate(language)
            messages.success(request, _("Preferences saved."))
            response = redirect("preferences")
            response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600, samesite="Lax")
            return response
    else:
        form = PreferenceForm(initial={"language": translation.get_language(),
                                       "time_zone": stored.time_zone if stored else ""})
    return render(request, "frontend/preferences.html", {"form": form})
