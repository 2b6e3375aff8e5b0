from django.urls import path

from curation.views import books, review

urlpatterns = [
    path("", books.HomeView.as_view(), name="home"),
    path("books/", books.BookListView.as_view(), name="book-list"),
    path("books/<int:pk>/", books.BookDetailView.as_view(), name="book-detail"),
    path("books/<int:pk>/progress/", books.BookProgressView.as_view(), name="book-progress"),
    path("books/<int:pk>/reingest/", books.BookReingestView.as_view(), name="book-reingest"),
    path("files/<path:path>", books.StoredFileView.as_view(), name="stored-file"),
    path("review/next/", review.ReviewNextView.as_view(), name="review-next"),
    path("review/pairs/<int:pk>/", review.PairReviewView.as_view(), name="review-pair"),
    path("review/pairs/<int:pk>/renew/", review.ClaimRenewView.as_view(), name="review-renew"),
    path("review/pairs/<int:pk>/revert/", review.PairRevertView.as_view(), name="review-revert"),
]
