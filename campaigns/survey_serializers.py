from rest_framework import serializers

from .models import Answer, Question, Survey, SurveyResponse


class QuestionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Question
        fields = ["id", "position", "text", "kind", "required", "choices"]
        read_only_fields = fields


class SurveySerializer(serializers.ModelSerializer):
    questions = QuestionSerializer(many=True, read_only=True)
    response_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Survey
        fields = ["id", "name", "intro", "thanks", "status", "link_days", "questions", "response_count",
                  "created_at", "updated_at"]
        read_only_fields = fields


class AnswerSerializer(serializers.ModelSerializer):
    question = serializers.IntegerField(source="question_id", read_only=True)

    class Meta:
        model = Answer
        fields = ["question", "choice", "text"]
        read_only_fields = fields


class SurveyResponseSerializer(serializers.ModelSerializer):
    survey = serializers.IntegerField(source="survey_id", read_only=True)
    member = serializers.IntegerField(source="member_id", read_only=True)
    member_external_id = serializers.CharField(source="member.external_id", read_only=True)
    answers = AnswerSerializer(many=True, read_only=True)

    class Meta:
        model = SurveyResponse
        fields = ["id", "survey", "member", "member_external_id", "submitted_at", "answers"]
        read_only_fields = fields


class ChoiceSummarySerializer(serializers.Serializer):
    choice = serializers.CharField()
    count = serializers.IntegerField()
    share = serializers.FloatField(help_text="count / members who answered the question")
    offered = serializers.BooleanField()


class QuestionSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    kind = serializers.CharField()
    answered = serializers.IntegerField()
    skipped = serializers.IntegerField()
    choices = ChoiceSummarySerializer(many=True)
    texts = serializers.SerializerMethodField()

    def get_texts(self, row) -> list[str]:
        return [answer.text for answer in row["texts"]]


class SurveySummarySerializer(serializers.Serializer):
    responses = serializers.IntegerField()
    questions = QuestionSummarySerializer(many=True)
