from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.utils.translation import gettext_lazy as _

from .models import ApiKey, Staff, Store


class StoreForm(forms.ModelForm):
    class Meta:
        model = Store
        fields = ["code", "name", "city", "region", "active"]

    def clean_code(self):
        code = self.cleaned_data["code"].strip()
        others = Store.objects.filter(code=code)
        if self.instance.pk:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError(_("A store with this code already exists."))
        return code


class StaffForm(forms.ModelForm):
    """Create or edit a staff member and their login. The password is required on create and
    changes only when given on edit."""

    username = forms.CharField(label=_("Username"), max_length=150)
    password = forms.CharField(
        label=_("Password"), required=False, strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    email = forms.EmailField(
        label=_("Email"), required=False,
        help_text=_("Alerts for this person, such as a guide losing many contacts in a day, are emailed here."),
    )

    class Meta:
        model = Staff
        fields = ["username", "password", "name", "role", "stores", "mobile", "email", "wecom_userid", "active"]
        widgets = {"stores": forms.CheckboxSelectMultiple}

    def __init__(self, *args, editor, **kwargs):
        super().__init__(*args, **kwargs)
        self.editor = editor
        self.fields["stores"].queryset = Store.objects.all()
        if self.instance.pk:
            self.fields["username"].initial = self.instance.user.get_username()
            self.fields["email"].initial = self.instance.user.email
            self.fields["password"].help_text = _("Leave empty to keep the current password.")
        else:
            self.fields["password"].required = True
        if editor.role != Staff.Role.OWNER:
            self.fields["role"].choices = [c for c in Staff.Role.choices if c[0] != Staff.Role.OWNER]
        if self.instance.pk == editor.pk:
            # Nobody locks themselves out: one's own role and active flag are changed by another owner.
            self.fields["role"].disabled = True
            self.fields["active"].disabled = True

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        users = get_user_model().objects.filter(username=username)
        if self.instance.pk:
            users = users.exclude(pk=self.instance.user_id)
        if users.exists():
            raise forms.ValidationError(_("This username is taken."))
        return username

    def clean_password(self):
        password = self.cleaned_data.get("password")
        if password:
            validate_password(password)
        return password

    def clean(self):
        cleaned = super().clean()
        role = cleaned.get("role")
        if role in (Staff.Role.GUIDE, Staff.Role.STORE_MANAGER) and not cleaned.get("stores"):
            self.add_error("stores", _("Guides and store managers belong to at least one store."))
        return cleaned


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name"]
        help_texts = {"name": _("Say what uses the key, e.g. “POS sync”.")}
