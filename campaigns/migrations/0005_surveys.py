import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0004_wecom")]

    operations = [
        migrations.CreateModel(
            name="Survey",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=120, verbose_name="name")),
                ("intro", models.TextField(blank=True, help_text="Shown above the questions.", verbose_name="introduction")),
                ("thanks", models.TextField(blank=True, help_text="Shown after the member has answered.", verbose_name="thank-you text")),
                ("status", models.CharField(choices=[("draft", "Draft"), ("open", "Open for answers"), ("closed", "Closed")], default="draft", max_length=8, verbose_name="status")),
                ("link_days", models.PositiveSmallIntegerField(blank=True, default=30, help_text="Empty: a member's link never expires.", null=True, validators=[django.core.validators.MinValueValidator(1)], verbose_name="links valid for (days)")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="scrm.staff")),
                ("tenant", models.ForeignKey(editable=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="scrm.tenant")),
            ],
            options={"verbose_name": "survey", "verbose_name_plural": "surveys", "ordering": ["-created_at", "-pk"]},
        ),
        migrations.CreateModel(
            name="Question",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("position", models.PositiveSmallIntegerField(default=0, verbose_name="order")),
                ("text", models.CharField(max_length=300, verbose_name="question")),
                ("kind", models.CharField(choices=[("single", "Single choice"), ("multiple", "Multiple choice"), ("text", "Text")], default="single", max_length=8, verbose_name="kind")),
                ("required", models.BooleanField(default=True, verbose_name="required")),
                ("choices", models.JSONField(blank=True, default=list, verbose_name="choices")),
                ("tenant", models.ForeignKey(editable=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="scrm.tenant")),
                ("survey", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="questions", to="campaigns.survey")),
            ],
            options={"verbose_name": "question", "verbose_name_plural": "questions", "ordering": ["position", "pk"]},
        ),
        migrations.AddField(
            model_name="campaign",
            name="trigger_survey",
            field=models.ForeignKey(blank=True, help_text="Empty: any survey.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="campaigns.survey", verbose_name="survey"),
        ),
        migrations.AddField(
            model_name="step",
            name="survey",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="steps", to="campaigns.survey", verbose_name="survey"),
        ),
        migrations.CreateModel(
            name="SurveyResponse",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("submitted_at", models.DateTimeField(verbose_name="submitted at")),
                ("member", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="members.member", verbose_name="member")),
                ("survey", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="responses", to="campaigns.survey")),
                ("tenant", models.ForeignKey(editable=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="scrm.tenant")),
            ],
            options={"verbose_name": "survey response", "verbose_name_plural": "survey responses", "ordering": ["-submitted_at", "-pk"]},
        ),
        migrations.CreateModel(
            name="Answer",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("choice", models.CharField(blank=True, max_length=200, verbose_name="choice")),
                ("text", models.TextField(blank=True, verbose_name="answer")),
                ("tenant", models.ForeignKey(editable=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="scrm.tenant")),
                ("question", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="answers", to="campaigns.question")),
                ("survey", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="campaigns.survey")),
                ("response", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="answers", to="campaigns.surveyresponse")),
            ],
            options={"verbose_name": "answer", "verbose_name_plural": "answers", "ordering": ["pk"]},
        ),
        migrations.AddIndex(
            model_name="survey",
            index=models.Index(fields=["tenant", "status"], name="survey_tenant_status"),
        ),
        migrations.AddIndex(
            model_name="question",
            index=models.Index(fields=["tenant", "survey", "position"], name="question_tenant_survey"),
        ),
        migrations.AddIndex(
            model_name="surveyresponse",
            index=models.Index(fields=["tenant", "survey", "submitted_at"], name="surveyresponse_survey_time"),
        ),
        migrations.AddConstraint(
            model_name="surveyresponse",
            constraint=models.UniqueConstraint(fields=("tenant", "survey", "member"), name="surveyresponse_once_per_member"),
        ),
        migrations.AddIndex(
            model_name="answer",
            index=models.Index(fields=["tenant", "survey", "question", "choice"], name="answer_survey_question"),
        ),
        migrations.AddConstraint(
            model_name="answer",
            constraint=models.UniqueConstraint(fields=("tenant", "response", "question", "choice"), name="answer_unique_choice"),
        ),
    ]
