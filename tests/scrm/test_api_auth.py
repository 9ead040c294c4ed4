import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.api_cases import assert_error


@pytest.mark.django_db
class TestApiAuthentication:
    def test_a_staff_session_works_like_the_dashboard_does(self, brand):
        assert brand.session(brand.operator).get("/api/v1/members/").status_code == 200

    def test_a_login_without_a_staff_member_is_refused(self, brand):
        user = get_user_model().objects.create_user(username="visitor", password="a-long-password")
        client = APIClient()
        client.force_login(user)
        assert_error(client.get("/api/v1/members/"), 403)

    @pytest.mark.parametrize("header", ["Api-Key", "Api-Key ", "Api-Key nodot", "Api-Key .x", "Bearer abc"])
    def test_a_malformed_authorization_header_is_refused(self, brand, header):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        assert client.get("/api/v1/members/").status_code == 401

    def test_a_refusal_tells_the_client_how_to_authenticate(self, brand):
        response = APIClient().get("/api/v1/members/")
        assert response["WWW-Authenticate"] == "Api-Key"
